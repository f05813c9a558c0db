// Command apply compares, in one boot of the real kernel, the time from
// `graft apply` to a finished transition with the usual manual way:
// insmod followed by a shell loop that polls the patch's transition file
// every 100 ms. Median of several runs each, and their ratio.
//
// Reproduce with:
//
//	make build && CGO_ENABLED=0 go run ./bench/apply [-runs 5]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"time"

	"github.com/graft-live/graft/internal/fixtures"
	"github.com/graft-live/graft/vm"
)

const module = "/livepatch-sample.ko"

func main() {
	runs := flag.Int("runs", 5, "runs of each method")
	guest := flag.Bool("guest", false, "run the measurement (inside the VM)")
	graft := flag.String("graft", "bin/graft", "static graft binary (the guest's init)")
	flag.Parse()
	var err error
	if *guest {
		err = measure(*runs)
	} else {
		err = host(*runs, *graft)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/apply:", err)
		os.Exit(1)
	}
}

func host(runs int, graft string) error {
	ctx := context.Background()
	mods, err := fixtures.Build(ctx)
	if err != nil {
		return err
	}
	target, err := vm.PrepareTarget(ctx, "", nil)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Printf("kernel %s under TCG, livepatch-sample.ko, %d runs each\n", target.Kernel, runs)
	code, err := vm.Exec(ctx, vm.Config{
		Image:  target.Image,
		Argv:   []string{"/bench", "-guest", "-runs", strconv.Itoa(runs)},
		Stdout: os.Stdout, Stderr: os.Stderr,
		Timeout: 10 * time.Minute,
		Initramfs: vm.Initramfs{
			Init: graft, Busybox: target.Busybox,
			Files: []vm.File{
				{Host: self, Guest: "/bench", Mode: 0o755},
				{Host: mods.Path("livepatch-sample.ko"), Guest: module},
			},
		},
	})
	if err == nil && code != 0 {
		err = fmt.Errorf("guest exit status %d", code)
	}
	return err
}

func measure(runs int) error {
	var withGraft, withLoop []float64
	for i := 0; i < runs; i++ {
		d, err := timed("graft", "apply", "-q", module)
		if err != nil {
			return err
		}
		withGraft = append(withGraft, d)
		if _, err := timed("graft", "revert", "-q", "livepatch_sample"); err != nil {
			return err
		}
		d, err = timed("sh", "-c", `insmod `+module+` && while [ "$(cat /sys/kernel/livepatch/livepatch_sample/transition)" = 1 ]; do sleep 0.1; done`)
		if err != nil {
			return err
		}
		withLoop = append(withLoop, d)
		if _, err := timed("graft", "revert", "-q", "livepatch_sample"); err != nil {
			return err
		}
		fmt.Printf("run %d: graft apply %.3f s, insmod + 100 ms poll loop %.3f s\n", i+1, withGraft[i], withLoop[i])
	}
	g, l := median(withGraft), median(withLoop)
	fmt.Printf("median: graft apply %.3f s, insmod + poll loop %.3f s, ratio %.2f\n", g, l, g/l)
	return nil
}

func timed(name string, args ...string) (float64, error) {
	start := time.Now()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%s %v: %v: %s", name, args, err, out)
	}
	return time.Since(start).Seconds(), nil
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}
