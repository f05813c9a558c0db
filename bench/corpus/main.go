// Command corpus live patches real kernel fixes: every .c file that
// differs between two Debian source uploads of one kernel series becomes
// one patch, which graft builds against the older upload's kernel and then
// loads, exercises and reverts in VMs of that kernel.
//
// Reproduce with:
//
//	go run ./bench/corpus -from 6.1.187-1 -to 6.1.190-1 -kernel 6.1.0-53-amd64 [-sample N -seed S] [-only PATH-GLOB] [-results FILE] [-json]
//
// Each finished patch's outcome is appended to the results file (default
// in graft's cache), so a run that is stopped resumes where it was; results
// of another graft version (the hash of its Go sources) are redone.
// Outcomes:
//
//	loaded        built, applied, exercised and reverted without a kernel complaint
//	load-failure  built, but apply or revert failed in the VM
//	oops          built, and the kernel logged an oops, BUG or warning (or died)
//	refused       refused with a finding id (the change cannot be live patched)
//	not-alone     the patched file does not compile without the update's other changes
//	error         anything else: a graft bug
//	not-built     the configuration builds neither the file nor the changed code (counted apart)
//
// The last line is the summary:
//
//	corpus: N patches: B built, R refused, C not compilable alone, E errors, L loaded, F load failures, O oopses
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/graft-live/graft/distro/debian"
	"github.com/graft-live/graft/kernel"
)

type config struct {
	from, to, release string
	sample            int
	seed              uint64
	only              string
	results           string
	asJSON            bool
	batch             int
	keepStale         bool
	work              string
}

func main() {
	var c config
	flag.StringVar(&c.from, "from", "", "Debian version of the older source upload: the target kernel's own (6.1.187-1)")
	flag.StringVar(&c.to, "to", "", "Debian version of the newer source upload, whose changes are the patches (6.1.190-1)")
	flag.StringVar(&c.release, "kernel", "", "target kernel release, built from the -from source (6.1.0-53-amd64)")
	flag.IntVar(&c.sample, "sample", 0, "build only N patches, chosen at random with -seed (0: all)")
	flag.Uint64Var(&c.seed, "seed", 1, "seed of the sample")
	flag.StringVar(&c.only, "only", "", "only files whose path matches this glob (path.Match; ** is not special), e.g. 'fs/*/*.c'")
	flag.StringVar(&c.results, "results", "", "results file, one JSON line per finished patch (default: in the work directory)")
	flag.BoolVar(&c.asJSON, "json", false, "print the per-patch table as JSON instead of text")
	flag.IntVar(&c.batch, "batch", 16, "modules loaded per VM boot")
	flag.BoolVar(&c.keepStale, "keep-stale", false, "keep results of other graft versions, except errors and load failures (for iterating on fixes; the final figures need a run without it)")
	flag.StringVar(&c.work, "work", "", "work directory for patches and modules (default: GRAFT_CACHE/corpus/FROM_TO)")
	guest := flag.String("guest", "", "(inside the VM) try the modules of this list")
	flag.Parse()
	if *guest != "" {
		if err := runGuest(*guest); err != nil {
			fmt.Fprintln(os.Stderr, "corpus guest:", err)
			os.Exit(1)
		}
		return
	}
	if c.from == "" || c.to == "" || c.release == "" {
		fmt.Fprintln(os.Stderr, "corpus: -from, -to and -kernel are required")
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "corpus:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	start := time.Now()
	cache, err := kernel.OpenCache("")
	if err != nil {
		return err
	}
	if c.work == "" {
		c.work = filepath.Join(cache.Dir(), "corpus", c.from+"_"+c.to)
	}
	if c.results == "" {
		c.results = filepath.Join(c.work, "results.jsonl")
	}
	version, err := graftVersion()
	if err != nil {
		return err
	}
	logf("graft version %s; work directory %s", version, c.work)

	spec := kernel.Spec{Release: c.release + "=" + c.from}
	target, err := cache.Resolve(ctx, spec, kernel.Image|kernel.Headers|kernel.Source|kernel.Symbols, nil)
	if err != nil {
		return err
	}
	series, err := debian.SourceSeries(target.Release)
	if err != nil {
		return err
	}
	newer, err := cache.Debian().Source(ctx, series, c.to, nil)
	if err != nil {
		return err
	}
	logf("target %s; changes from linux-source-%s %s to %s", target, series, c.from, c.to)

	all, skipped, err := changedFiles(target.SourceDir, newer)
	if err != nil {
		return err
	}
	files := selectFiles(all, c.only, c.sample, c.seed)
	logf("%d .c files differ (%d more under tools/ or other architectures); %d selected", len(all), skipped, len(files))

	store, err := openResults(c.results, version, c.keepStale)
	if err != nil {
		return err
	}
	defer store.close()
	if err := buildAll(ctx, c, target, newer, files, store); err != nil {
		return err
	}
	if err := loadAll(ctx, c, target, files, store); err != nil {
		return err
	}
	return report(c, files, store, time.Since(start))
}

// selectFiles filters files by the glob and draws the sample, in a stable
// order: the same seed picks the same files.
func selectFiles(all []string, only string, sample int, seed uint64) []string {
	var files []string
	for _, f := range all {
		if only != "" {
			if ok, _ := path.Match(only, f); !ok {
				continue
			}
		}
		files = append(files, f)
	}
	if sample > 0 && sample < len(files) {
		r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
		r.Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
		files = files[:sample]
		sort.Strings(files)
	}
	return files
}

// report prints one line per patch and the summary.
func report(c config, files []string, store *results, took time.Duration) error {
	var rows []result
	for _, f := range files {
		if r, ok := store.get(f); ok {
			rows = append(rows, r)
		}
	}
	if c.asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rows); err != nil {
			return err
		}
	} else {
		for _, r := range rows {
			detail := r.Finding
			if detail == "" {
				detail = r.Error
			}
			if len(detail) > 160 {
				detail = detail[:160] + "..."
			}
			fmt.Printf("%-60s %-12s %6.1fs  %s\n", r.File, r.Outcome, r.BuildSeconds, detail)
		}
	}
	s := summarize(rows)
	findings := make([]string, 0, len(s.findings))
	for id, n := range s.findings {
		findings = append(findings, fmt.Sprintf("%s %d", id, n))
	}
	sort.Strings(findings)
	fmt.Fprintf(os.Stderr, "corpus: %d of %d selected patches finished in %v; %d not built by the configuration\n", len(rows), len(files), took.Round(time.Second), s.notBuilt)
	if len(findings) > 0 {
		fmt.Fprintf(os.Stderr, "corpus: refusals by finding: %s\n", strings.Join(findings, ", "))
	}
	if s.built+s.refused > 0 {
		fmt.Fprintf(os.Stderr, "corpus: built / (built + refused) = %.1f%%; median build %.1f s\n", 100*float64(s.built)/float64(s.built+s.refused), s.medianBuild)
	}
	fmt.Printf("corpus: %d patches: %d built, %d refused, %d not compilable alone, %d errors, %d loaded, %d load failures, %d oopses\n",
		s.patches, s.built, s.refused, s.notAlone, s.errors, s.loaded, s.loadFailures, s.oopses)
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "corpus: "+format+"\n", args...)
}
