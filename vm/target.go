package vm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/graft-live/graft/distro/debian"
	"github.com/graft-live/graft/kernel"
)

// Target is a kernel ready to boot: the ELF kernel QEMU loads, its modules
// and the busybox the guest uses, all from the graft cache.
type Target struct {
	Kernel *kernel.Target
	// Boot is the ELF vmlinux (or the vmlinuz when extraction failed).
	Boot    string
	Busybox string
}

// PrepareTarget resolves release ("" = Debian's default kernel; see
// kernel.ParseSpec), fetches its image and busybox-static into the cache
// and extracts the bootable ELF.
func PrepareTarget(ctx context.Context, release string, progress debian.Progress) (*Target, error) {
	cache, err := kernel.OpenCache("")
	if err != nil {
		return nil, err
	}
	k, err := cache.Resolve(ctx, kernel.ParseSpec(release), kernel.Image, progress)
	if err != nil {
		return nil, err
	}
	bbDir, err := cache.Debian().Package(ctx, "busybox-static", "", progress)
	if err != nil {
		return nil, fmt.Errorf("fetch busybox-static: %w", err)
	}
	t := &Target{Kernel: k, Busybox: filepath.Join(bbDir, "bin", "busybox")}
	if _, err := os.Stat(t.Busybox); err != nil {
		return nil, fmt.Errorf("busybox-static: %w", err)
	}
	t.Boot, err = ExtractVmlinux(k.Vmlinuz, filepath.Join(cache.Dir(), "vm"))
	if err != nil {
		// The bzImage boots too, only slower (its decompressor runs under
		// emulation).
		t.Boot = k.Vmlinuz
	}
	return t, nil
}
