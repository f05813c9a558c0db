// Package vm boots a target kernel in a disposable QEMU VM and runs one
// command inside it: the engine of `graft vm`, and of the tests that run on
// a real kernel (internal/vmtest is the thin test adapter on top).
//
// The VM has no disk: everything it needs is in an initramfs built here in
// Go. Its /init is the graft binary itself (see vm/guest), with busybox
// applets and graft on PATH and the caller's files at their guest paths.
// The command's stdout and stderr come back over their own serial ports,
// apart from the kernel's console, and its exit status over a fourth.
//
// Under TCG (the default; KVM is used only after a probe proved it boots)
// boot-to-command takes about two seconds for a Debian kernel when QEMU
// loads the uncompressed ELF vmlinux through its PVH entry, which
// ExtractVmlinux takes once out of the vmlinuz and caches: the bzImage's
// own xz decompression is what makes a plain vmlinuz boot slow under
// emulation.
package vm
