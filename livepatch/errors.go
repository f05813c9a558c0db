package livepatch

import (
	"errors"
	"fmt"
	"strings"

	"github.com/graft-live/graft/kmod"
)

var (
	// ErrNotRoot means the operation needs root (CAP_SYS_MODULE).
	ErrNotRoot = errors.New("livepatch operations need root (CAP_SYS_MODULE): run graft with sudo")
	// ErrNoLivepatch means the running kernel has no livepatch support.
	ErrNoLivepatch = errors.New("the running kernel has no livepatch support (/sys/kernel/livepatch is missing: CONFIG_LIVEPATCH is off)")
	// ErrNotLivepatch means a module is not a livepatch module.
	ErrNotLivepatch = errors.New("not a livepatch module")
	// ErrWrongKernel means a module was built for another kernel.
	ErrWrongKernel = errors.New("module built for another kernel")
	// ErrCorrupt means a module file is truncated or not a kernel module
	// (it is kmod.ErrCorrupt, which the checks before loading return).
	ErrCorrupt = kmod.ErrCorrupt
	// ErrAlreadyLoaded means a module of that name is already loaded.
	ErrAlreadyLoaded = errors.New("already loaded")
	// ErrSignature means the kernel refused the module's signature (or its
	// lack of one): module.sig_enforce=1, lockdown, or an unknown key.
	ErrSignature = errors.New("the kernel refused the module signature")
	// ErrRefused means the kernel refused to load the module for another
	// reason; the error carries the kernel's messages.
	ErrRefused = errors.New("the kernel refused the module")
	// ErrNotFound means no loaded patch has that name.
	ErrNotFound = errors.New("no such livepatch")
	// ErrStalled matches a *StallError.
	ErrStalled = errors.New("livepatch transition stalled")
	// ErrNotInTransition means force was asked for a patch that is not in
	// transition.
	ErrNotInTransition = errors.New("the patch is not in transition")
)

// StallError reports a transition that did not finish in time, with the
// tasks that blocked it.
type StallError struct {
	Patch string
	// Target is the state the transition was heading to: "patched" or
	// "unpatched".
	Target string
	// Blockers are the tasks still in the old state, with their stacks.
	Blockers []Task
	// Reverted says whether graft reversed the transition and unloaded the
	// module afterwards.
	Reverted bool
}

func (e *StallError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: transition to %s stalled; %d task(s) block it", e.Patch, e.Target, len(e.Blockers))
	for _, t := range e.Blockers {
		fmt.Fprintf(&b, "\n  %s", t.Describe())
	}
	if e.Reverted {
		b.WriteString("\nthe transition was reversed and the module unloaded; nothing changed")
	} else {
		fmt.Fprintf(&b, "\nthe patch is left in transition: it completes when those tasks leave the functions; 'graft revert %s' cancels it", e.Patch)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrStalled) true.
func (e *StallError) Is(target error) bool { return target == ErrStalled }
