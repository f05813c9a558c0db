package vm

import "errors"

// ErrNoQEMU means qemu-system-x86_64 is not installed.
var ErrNoQEMU = errors.New("qemu-system-x86_64 not found: install it with 'apt-get install qemu-system-x86'")

// ErrFileNotFound means a file to copy into the guest does not exist.
var ErrFileNotFound = errors.New("file for the guest not found")

// ErrTimeout means the guest did not finish before the deadline; the VM was
// killed.
var ErrTimeout = errors.New("guest timed out")

// ErrVM means the VM failed before the command's exit status was known
// (QEMU failed to start, the kernel panicked, the guest init failed).
var ErrVM = errors.New("vm failed")
