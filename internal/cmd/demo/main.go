// Command demo shows graft end to end on a stock Debian kernel: it builds a
// livepatch module from examples/cmdline.patch with graft build (fetching
// the kernel on first use), boots that kernel in a disposable VM and there
// applies the module with graft, showing /proc/cmdline before, after the
// transition, and after graft revert.
//
// Run it with `make demo` (`make demo KERNEL=RELEASE` for another Debian
// kernel).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/graft-live/graft/kernel"
	"github.com/graft-live/graft/vm"
)

// guestScript runs in the VM, with graft on PATH: what an operator types.
const guestScript = `
set -e
echo "== /proc/cmdline before the livepatch"
cat /proc/cmdline
echo "== graft apply /livepatch-cmdline.ko"
graft apply /livepatch-cmdline.ko
echo "== /proc/cmdline after the transition"
cat /proc/cmdline
echo "== graft status"
graft status
echo "== graft revert livepatch_cmdline"
graft revert livepatch_cmdline
echo "== /proc/cmdline after the revert"
cat /proc/cmdline
`

func main() {
	release := flag.String("kernel", "", "Debian kernel release (default: the candidate of linux-image-amd64)")
	graft := flag.String("graft", "bin/graft", "graft binary (static: CGO_ENABLED=0); it is also the guest's init")
	patch := flag.String("patch", "examples/cmdline.patch", "the patch to build")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *release, *graft, *patch); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) func() {
	start := time.Now()
	fmt.Fprintf(os.Stderr, "demo: "+format+"\n", args...)
	return func() { fmt.Fprintf(os.Stderr, "demo:   done in %v\n", time.Since(start).Round(time.Millisecond)) }
}

func run(ctx context.Context, release, graft, patch string) error {
	graft, err := filepath.Abs(graft)
	if err != nil {
		return err
	}
	if _, err := os.Stat(graft); err != nil {
		return fmt.Errorf("graft binary: %w (run 'make build' first)", err)
	}
	cache, err := kernel.OpenCache("")
	if err != nil {
		return err
	}
	t, err := cache.Resolve(ctx, kernel.Spec{Release: release}, 0, nil)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "graft-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	ko := filepath.Join(work, "livepatch-cmdline.ko")

	done := step("graft build %s --kernel %s (the first build fetches the kernel into %s and prepares its source)", patch, t, cache.Dir())
	cmd := exec.CommandContext(ctx, graft, "build", patch, "--kernel", t.Release+"="+t.Version, "-o", ko)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("graft build: %w", err)
	}
	done()

	done = step("boot %s in QEMU; in the guest: graft apply, status, revert", t)
	target, err := vm.PrepareTarget(ctx, t.Release+"="+t.Version, nil)
	if err != nil {
		return err
	}
	code, err := vm.Exec(ctx, vm.Config{
		Image:   target.Image,
		Argv:    []string{"sh", "-c", guestScript},
		Stdout:  os.Stdout,
		Stderr:  os.Stderr,
		Timeout: 3 * time.Minute,
		Initramfs: vm.Initramfs{
			Init:    graft,
			Busybox: target.Busybox,
			Files:   []vm.File{{Host: ko, Guest: "/livepatch-cmdline.ko"}},
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
