// Package vm boots a target kernel in a disposable QEMU VM and runs one
// command inside it: the engine of `graft vm`, and the place where graft's
// own tests meet a real kernel.
//
// graft's data path ends in a running kernel (build → module → graft apply);
// vm supplies one that can be thrown away. PrepareTarget resolves a kernel
// release (package kernel), fetches its Debian image and a static busybox into
// the graft cache and extracts the ELF vmlinux from the vmlinuz. Exec boots it
// and returns the command's exit status. The VM has no disk and no network:
// everything it needs is in an initramfs built here in Go. Its /init is the
// graft binary itself (package vm/guest is that init), with busybox applets
// and graft on PATH, the caller's files (Initramfs.Files) at their guest paths
// and, if asked, kernel modules of the target with their dependencies
// (Modules) loaded before the command. The command's stdout and stderr come
// back over serial ports of their own, apart from the kernel's console, and
// its exit status over a fourth.
//
// Errors say whether the command ran: a non-nil error from Exec means its
// status is unknown (ErrNoQEMU, ErrFileNotFound, ErrTimeout with a
// TimeoutError, ErrVM with a GuestError, or the context's error), and the
// VM and every temporary file are gone when Exec returns either way.
//
// Under TCG (the default; KVM is used only after a probe proved it boots)
// boot-to-command takes about two seconds for a Debian kernel when QEMU loads
// the uncompressed ELF vmlinux through its PVH entry: the bzImage's own xz
// decompression is what makes a plain vmlinuz boot slow under emulation.
//
// vm knows nothing of livepatches and does not depend on package testing;
// internal/vmtest is the test adapter on top of it.
package vm
