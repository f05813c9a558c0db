package vm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/graft-live/graft/kernel"
)

// Target is a kernel ready to boot, with what the guest needs from Debian,
// all in the graft cache.
type Target struct {
	// Kernel is the resolved kernel: release, version, and its image and
	// modules (ModulesDir, for Modules) in the cache.
	Kernel *kernel.Target
	// Image is the kernel file to boot (Config.Image): the ELF vmlinux
	// extracted from the vmlinuz, or the vmlinuz itself when extraction
	// failed.
	Image string
	// Busybox is the static busybox of busybox-static (Initramfs.Busybox).
	Busybox string
}

// PrepareTarget resolves release ("" = Debian's default kernel; see
// kernel.ParseSpec), fetches its image and busybox-static into the graft
// cache (progress reports the downloads; nil is silent) and extracts the
// bootable ELF kernel, once per image.
func PrepareTarget(ctx context.Context, release string, progress kernel.Progress) (*Target, error) {
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
	t.Image, err = extractVmlinux(k.Vmlinuz, filepath.Join(cache.Dir(), "vm"))
	if err != nil {
		// The bzImage boots too, only slower (its decompressor runs under
		// emulation).
		t.Image = k.Vmlinuz
	}
	return t, nil
}
