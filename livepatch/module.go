package livepatch

import (
	"fmt"

	"github.com/graft-live/graft/kmod"
)

// CheckModule refuses a module that is not a livepatch or was built for
// another kernel than release; path names it in the error.
func CheckModule(m *kmod.Module, path, release string) error {
	if !m.Livepatch {
		return fmt.Errorf("%s: %w (modinfo has no livepatch=Y): load ordinary modules with modprobe", path, ErrNotLivepatch)
	}
	if m.Release() != release {
		return fmt.Errorf("%s: %w: built for %s, running %s (rebuild it for %s)", path, ErrWrongKernel, m.Release(), release, release)
	}
	return nil
}
