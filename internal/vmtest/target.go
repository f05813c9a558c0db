package vmtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/graft-live/graft/distro/debian"
)

// Target is a Debian kernel ready to boot: the ELF kernel QEMU loads and the
// busybox the guest uses, both from the graft cache.
type Target struct {
	Kernel  debian.Kernel
	Tree    *debian.Tree
	Boot    string // ELF vmlinux (or the vmlinuz when extraction failed)
	Busybox string
}

// PrepareTarget resolves release ("" = Debian's default kernel), fetches
// its image and busybox-static into the cache and extracts the bootable ELF.
func PrepareTarget(ctx context.Context, release string, progress debian.Progress) (*Target, error) {
	cache, err := debian.OpenCache("")
	if err != nil {
		return nil, err
	}
	k, err := debian.Resolve(ctx, release)
	if err != nil {
		return nil, err
	}
	tree, err := cache.Fetch(ctx, k, debian.Image, progress)
	if err != nil {
		return nil, err
	}
	bbDir, err := cache.Package(ctx, "busybox-static", "", progress)
	if err != nil {
		return nil, fmt.Errorf("fetch busybox-static: %w", err)
	}
	t := &Target{Kernel: k, Tree: tree, Busybox: filepath.Join(bbDir, "bin", "busybox")}
	if _, err := os.Stat(t.Busybox); err != nil {
		return nil, fmt.Errorf("busybox-static: %w", err)
	}
	t.Boot, err = ExtractVmlinux(tree.Vmlinuz, filepath.Join(cache.Dir(), "vm"))
	if err != nil {
		// The bzImage boots too, only slower (its decompressor runs under
		// emulation).
		t.Boot = tree.Vmlinuz
	}
	return t, nil
}
