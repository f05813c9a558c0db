// Command build measures graft build: the wall time of building
// examples/cmdline.patch into a livepatch module, median of several runs,
// split by stage, in three states of the cache (and graft check, warm):
//
//   - warm: the source tree is prepared and the original objects are
//     cached (every build after the first);
//   - prepared: the trees are prepared, the original objects are not (the
//     first build of a file);
//   - empty: nothing is cached: fetching the kernel's packages (image,
//     headers, source, the ~860 MB -dbg symbols) and preparing the trees
//     are part of the time.
//
// Reproduce with:
//
//	go run ./bench/build [-runs 5] [-empty-runs 5] [-kernel RELEASE]
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
	"time"

	"github.com/graft-live/graft/build"
	"github.com/graft-live/graft/kernel"
)

func main() {
	runs := flag.Int("runs", 5, "builds with a prepared tree (warm and prepared)")
	emptyRuns := flag.Int("empty-runs", 5, "builds from an empty cache (0 skips them)")
	release := flag.String("kernel", "", "Debian kernel release (default: Debian's default kernel)")
	patch := flag.String("patch", "examples/cmdline.patch", "patch to build")
	flag.Parse()
	if err := run(*runs, *emptyRuns, *release, *patch); err != nil {
		fmt.Fprintln(os.Stderr, "bench/build:", err)
		os.Exit(1)
	}
}

func run(runs, emptyRuns int, release, patch string) error {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "graft-bench-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	cache, err := kernel.OpenCache("")
	if err != nil {
		return err
	}
	spec := kernel.Spec{Release: release}
	t, err := cache.Resolve(ctx, spec, kernel.Image|kernel.Headers|kernel.Source|kernel.Symbols, nil)
	if err != nil {
		return err
	}
	fmt.Printf("graft build %s for %s, %d CPUs\n", patch, t, runtime.NumCPU())
	opts := build.Options{Patches: []string{patch}, Kernel: kernel.Spec{Release: t.Release + "=" + t.Version}, Output: filepath.Join(tmp, "livepatch.ko"), Cache: cache}

	// One build prepares the trees and fills the object cache.
	if _, err := build.Build(ctx, opts); err != nil {
		return err
	}
	same := func() (build.Options, error) { return opts, nil }
	warm, err := series(ctx, runs, same)
	if err != nil {
		return err
	}
	report("warm (prepared trees, cached original objects)", warm)
	checkOpts := opts
	checkOpts.CheckOnly, checkOpts.Output = true, ""
	checks, err := series(ctx, runs, func() (build.Options, error) { return checkOpts, nil })
	if err != nil {
		return err
	}
	report("graft check, warm", checks)
	objects := filepath.Join(t.Dir, "objects")
	prepared, err := series(ctx, runs, func() (build.Options, error) { return opts, os.RemoveAll(objects) })
	if err != nil {
		return err
	}
	report("prepared (prepared trees, original objects compiled)", prepared)
	if emptyRuns > 0 {
		empty, err := series(ctx, emptyRuns, func() (build.Options, error) {
			dir := filepath.Join(tmp, "cache")
			if err := os.RemoveAll(dir); err != nil {
				return opts, err
			}
			c, err := kernel.OpenCache(dir)
			o := opts
			o.Cache = c
			return o, err
		})
		if err != nil {
			return err
		}
		report("empty cache (fetch image, headers, source, -dbg symbols; prepare two trees)", empty)
		fmt.Printf("ratio to the 1,867 s of 'make -j2 vmlinux' for Debian's 6.1 config: warm %.4f, empty cache %.3f\n",
			median(totals(warm))/1867, median(totals(empty))/1867)
	}
	return nil
}

// series builds runs times, each with the options that setup returns
// (setup runs untimed before each build: it may empty a cache).
func series(ctx context.Context, runs int, setup func() (build.Options, error)) ([]*build.Report, error) {
	var out []*build.Report
	for i := 0; i < runs; i++ {
		opts, err := setup()
		if err != nil {
			return nil, err
		}
		start := time.Now()
		rep, err := build.Build(ctx, opts)
		if err != nil {
			return nil, err
		}
		rep.Stages = append(rep.Stages, build.Stage{Name: "total", Seconds: time.Since(start).Seconds()})
		out = append(out, rep)
	}
	return out, nil
}

func totals(reps []*build.Report) []float64 {
	var out []float64
	for _, r := range reps {
		out = append(out, stage(r, "total"))
	}
	return out
}

func stage(r *build.Report, name string) float64 {
	for _, s := range r.Stages {
		if s.Name == name {
			return s.Seconds
		}
	}
	return 0
}

func report(what string, reps []*build.Report) {
	var names []string
	for _, s := range reps[0].Stages {
		names = append(names, s.Name)
	}
	var parts []string
	for _, n := range names {
		if n == "total" {
			continue
		}
		var xs []float64
		for _, r := range reps {
			xs = append(xs, stage(r, n))
		}
		parts = append(parts, fmt.Sprintf("%s %.2f", n, median(xs)))
	}
	fmt.Printf("%s: median %.2f s of %d (%s)\n  stages (medians, s): %s\n", what, median(totals(reps)), len(reps), fmtAll(totals(reps)), strings.Join(parts, ", "))
}

func fmtAll(xs []float64) string {
	var s []string
	for _, x := range xs {
		s = append(s, fmt.Sprintf("%.2f", x))
	}
	return strings.Join(s, " ")
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
