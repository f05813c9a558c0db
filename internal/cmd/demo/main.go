// Command demo shows graft end to end on a stock Debian kernel: it fetches
// the kernel, builds the kernel's own livepatch sample against the fetched
// headers, boots the kernel in a disposable VM and there applies the patch
// with graft, showing /proc/cmdline before, after the transition, and after
// graft revert.
//
// Run it with `make demo`.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/graft-live/graft/distro/debian"
	"github.com/graft-live/graft/internal/vmtest"
	"github.com/graft-live/graft/kbuild"
)

// guestScript runs in the VM, with graft on PATH: what an operator types.
const guestScript = `
set -e
echo "== /proc/cmdline before the livepatch"
cat /proc/cmdline
echo "== graft apply /livepatch-sample.ko"
graft apply /livepatch-sample.ko
echo "== /proc/cmdline after the transition"
cat /proc/cmdline
echo "== graft status"
graft status
echo "== graft revert livepatch_sample"
graft revert livepatch_sample
echo "== /proc/cmdline after disabling"
cat /proc/cmdline
`

func main() {
	release := flag.String("kernel", "", "Debian kernel release (default: the current linux-image-amd64)")
	graft := flag.String("graft", "bin/graft", "graft binary to use as the guest's init (static: CGO_ENABLED=0)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *release, *graft); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) func() {
	start := time.Now()
	fmt.Fprintf(os.Stderr, "demo: "+format+"\n", args...)
	return func() { fmt.Fprintf(os.Stderr, "demo:   done in %v\n", time.Since(start).Round(time.Millisecond)) }
}

func run(ctx context.Context, release, graft string) error {
	if _, err := os.Stat(graft); err != nil {
		return fmt.Errorf("graft binary: %w (run 'make build' first)", err)
	}
	cache, err := debian.OpenCache("")
	if err != nil {
		return err
	}
	k, err := debian.Resolve(ctx, release)
	if err != nil {
		return err
	}
	done := step("fetch %s: image, headers and source into %s", k, cache.Dir())
	tree, err := cache.Fetch(ctx, k, debian.Image|debian.Headers|debian.Source, nil)
	if err != nil {
		return err
	}
	done()

	done = step("build samples/livepatch/livepatch-sample.c against the fetched headers with kbuild")
	work, err := os.MkdirTemp("", "graft-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	src, err := os.ReadFile(filepath.Join(tree.SourceDir, "samples", "livepatch", "livepatch-sample.c"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(work, "livepatch-sample.c"), src, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(work, "Kbuild"), []byte("obj-m += livepatch-sample.o\n"), 0o644); err != nil {
		return err
	}
	kos, err := kbuild.BuildModules(ctx, tree.HeadersDir, work, io.Discard)
	if err != nil {
		return err
	}
	done()

	done = step("boot %s in QEMU; in the guest: graft apply, status, revert", k)
	target, err := vmtest.PrepareTarget(ctx, release, nil)
	if err != nil {
		return err
	}
	code, err := vmtest.Exec(ctx, vmtest.Config{
		Kernel:  target.Boot,
		Argv:    []string{"sh", "-c", guestScript},
		Stdout:  os.Stdout,
		Stderr:  os.Stderr,
		Timeout: 3 * time.Minute,
		Initramfs: vmtest.Initramfs{
			Init:    graft,
			Busybox: target.Busybox,
			Files:   []vmtest.File{{Host: kos[0], Guest: "/livepatch-sample.ko"}},
		},
	})
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("the guest script failed with exit status %d", code)
	}
	done()
	return nil
}
