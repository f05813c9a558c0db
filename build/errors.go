package build

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrNoChanges means the patches change no function or data of the
	// kernel: nothing to build.
	ErrNoChanges = errors.New("the patches change nothing that a livepatch could carry")
	// ErrRefused matches a *RefusedError: the change cannot be live patched
	// as it is.
	ErrRefused = errors.New("the change cannot be live patched")
	// ErrBadInput means the command's input is wrong: no patches, a module
	// name the kernel does not accept, an output path that is a directory.
	ErrBadInput = errors.New("bad input")
)

// RefusedError lists the findings that stop a build.
type RefusedError struct {
	Findings []Finding
}

func (e *RefusedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "refused: %d finding(s)", len(e.Findings))
	for _, f := range e.Findings {
		fmt.Fprintf(&b, "\n  %s", f)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }
