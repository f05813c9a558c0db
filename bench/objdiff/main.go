// Command objdiff measures objdiff on real kernel objects: every object of
// fs/proc (compiled from the Debian kernel source with the kernel's flags),
// each compared with itself and with a copy compiled after a change that
// moves every line (the worst case for the __LINE__ rule), with 1 and with
// all CPUs. It prints pairs per second (median of several runs) and the
// peak resident memory. It runs with objdiff.TuneGC, as graft does.
//
// Reproduce with:
//
//	go run ./bench/objdiff [-runs 5]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/graft-live/graft/kbuild"
	"github.com/graft-live/graft/kernel"
	"github.com/graft-live/graft/objdiff"
)

func main() {
	runs := flag.Int("runs", 5, "runs per setting")
	flag.Parse()
	objdiff.TuneGC()
	if err := run(*runs); err != nil {
		fmt.Fprintln(os.Stderr, "bench/objdiff:", err)
		os.Exit(1)
	}
}

type pair struct{ orig, patched string }

func run(runs int) error {
	ctx := context.Background()
	c, err := kernel.OpenCache("")
	if err != nil {
		return err
	}
	src, err := c.Resolve(ctx, kernel.Spec{}, kernel.Image|kernel.Headers|kernel.Source, nil)
	if err != nil {
		return err
	}
	tc, err := c.Toolchain(ctx, src, nil)
	if err != nil {
		return err
	}
	tree, err := kbuild.Prepare(ctx, tc, src.SourceDir, src.Config, src.PreparedDir(), nil)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "graft-bench-objdiff-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	srcs, _ := filepath.Glob(filepath.Join(tree.Dir, "fs/proc/*.c"))
	skip := map[string]bool{"nommu.c": true, "task_nommu.c": true, "vmcore.c": true, "kcore.c": true}
	var pairs []pair
	var bytes int64
	start := time.Now()
	for i, s := range srcs {
		if skip[filepath.Base(s)] {
			continue
		}
		obj := "fs/proc/" + strings.TrimSuffix(filepath.Base(s), ".c") + ".o"
		b, err := os.ReadFile(s)
		if err != nil {
			return err
		}
		moved := strings.Replace(string(b), "\n", "\n/* graft bench: every line moves */\n", 1)
		a, p, err := tree.CompilePair(ctx, obj, []byte(moved), filepath.Join(tmp, fmt.Sprint(i)), nil)
		if err != nil {
			return err
		}
		pairs = append(pairs, pair{a, a}, pair{a, p})
		for _, f := range []string{a, p} {
			if st, err := os.Stat(f); err == nil {
				bytes += st.Size()
			}
		}
	}
	fmt.Printf("kernel %s: %d objects of fs/proc compiled twice in %v (%.1f MB); %d pairs (each object with itself and with a line-shifted build)\n",
		src, len(pairs)/2, time.Since(start).Round(time.Second), float64(bytes)/1e6, len(pairs))

	// Each run goes over the pairs several times, so that a run lasts long
	// enough to time.
	const rounds = 20
	work := make([]pair, 0, rounds*len(pairs))
	for i := 0; i < rounds; i++ {
		work = append(work, pairs...)
	}
	changes := 0
	for _, procs := range []int{1, runtime.NumCPU()} {
		runtime.GOMAXPROCS(procs)
		var rates []float64
		for r := 0; r < runs; r++ {
			t0 := time.Now()
			var g errgroup.Group
			g.SetLimit(procs)
			results := make([]int, len(work))
			for i, p := range work {
				g.Go(func() error {
					res, err := objdiff.CompareFiles(p.orig, p.patched)
					if err != nil {
						return err
					}
					results[i] = len(res.Changes) + len(res.Errors)
					return nil
				})
			}
			if err := g.Wait(); err != nil {
				return err
			}
			rates = append(rates, float64(len(work))/time.Since(t0).Seconds())
			changes = 0
			for _, n := range results {
				changes += n
			}
		}
		sort.Float64s(rates)
		fmt.Printf("GOMAXPROCS=%d: median %.1f pairs/s (runs: %.1f .. %.1f)\n", procs, rates[len(rates)/2], rates[0], rates[len(rates)-1])
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	fmt.Printf("peak RSS %.1f MB; changes reported over all pairs: %d (want 0)\n", float64(ru.Maxrss)/1024, changes)
	return nil
}
