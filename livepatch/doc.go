// Package livepatch manages livepatches on the running kernel.
//
// It sits at the end of graft's data path: a livepatch module (.ko) goes in
// with Apply, which loads it with finit_module and follows the kernel's
// consistency-model transition task by task; Revert disables and unloads;
// ReadStatus reports every patch, which patch owns each function, and the
// tasks a transition still waits for.
//
// sysfs is the source of truth (Documentation/ABI/testing/sysfs-kernel-livepatch).
// Optional attributes are detected by existence, never by kernel version:
// <patch>/replace (6.11), <patch>/stack_order (6.14), <object>/patched (6.1),
// <patch>/force (4.15). Per-task state comes from
// /proc/PID/task/TID/patch_state (-1 none, 0 unpatched, 1 patched) and the
// blocking stacks from /proc/PID/task/TID/stack.
//
// A System carries the paths it reads, so tests can point it at a fake
// tree; Open returns the real one.
package livepatch
