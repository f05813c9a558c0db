package vm

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrNoQEMU means qemu-system-x86_64 is not installed.
var ErrNoQEMU = errors.New("qemu-system-x86_64 not found: install it with 'apt-get install qemu-system-x86'")

// ErrFileNotFound means a file to copy into the guest does not exist.
var ErrFileNotFound = errors.New("file for the guest not found")

// ErrUnknownModule means a kernel module asked for (graft vm --module) is not
// in the target's modules directory.
var ErrUnknownModule = errors.New("kernel module not found")

// ErrTimeout means the guest did not finish before the deadline; the VM was
// killed.
var ErrTimeout = errors.New("guest timed out")

// ErrVM means the VM failed before the command's exit status was known
// (QEMU failed to start, the kernel panicked, the guest init failed).
var ErrVM = errors.New("vm failed")

// TimeoutError reports a guest that did not finish in time. It matches
// ErrTimeout with errors.Is.
type TimeoutError struct {
	// After is Config.Timeout, the time the guest had.
	After time.Duration
	// Console holds the last lines of the kernel console: what the guest
	// was doing when it was killed.
	Console []string
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("guest did not finish within %v and was killed%s", e.After, formatTail(e.Console))
}

// Is makes errors.Is(err, ErrTimeout) true.
func (e *TimeoutError) Is(target error) bool { return target == ErrTimeout }

// GuestError reports a VM that stopped without the command's exit status:
// QEMU failed, the kernel panicked, or the guest init failed. It matches
// ErrVM with errors.Is.
type GuestError struct {
	// Reason says what failed, e.g. "the guest kernel panicked: ...".
	Reason string
	// Console holds the last lines of the kernel console.
	Console []string
}

func (e *GuestError) Error() string { return "vm: " + e.Reason + formatTail(e.Console) }

// Is makes errors.Is(err, ErrVM) true.
func (e *GuestError) Is(target error) bool { return target == ErrVM }

// consoleTail is how many console lines an error shows.
const consoleTail = 25

func formatTail(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return "\nlast console lines:\n  " + strings.Join(lines, "\n  ")
}
