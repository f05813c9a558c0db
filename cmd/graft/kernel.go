package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/graft-live/graft/distro/debian"
	"github.com/graft-live/graft/kernel"
)

func newKernelCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "kernel",
		Short: "List and fetch target kernels (Debian packages) in graft's cache",
		Long: `graft works on a target kernel named by its release (uname -r), e.g. 6.1.0-56-amd64.
For Debian kernels it fetches the packages it needs with 'apt-get download' into its cache
($GRAFT_CACHE, else $XDG_CACHE_HOME/graft, else ~/.cache/graft), keyed by exact package version,
and never installs anything into the system.`,
		Example: `  graft kernel list
  graft kernel fetch                      # the default kernel: image and headers
  graft kernel fetch 6.1.0-56-amd64 --source`,
	}
	c.AddCommand(newKernelListCmd(), newKernelFetchCmd())
	return c
}

// kernelEntry is one row of `graft kernel list`.
type kernelEntry struct {
	debian.Kernel
	Default   bool         `json:"default"`
	Cached    []string     `json:"cached"`
	Available bool         `json:"available"`
	Tree      *debian.Tree `json:"paths,omitempty"`
}

func newKernelListCmd() *cobra.Command {
	var asJSON, cachedOnly bool
	var suite string
	c := &cobra.Command{
		Use:   "list",
		Short: "Show the kernels in the cache and those the apt sources offer",
		Long: `Show the kernels in graft's cache (with the parts it holds) and the kernels that can be
fetched: by default those of the machine's apt sources, with --suite those of one Debian release
from graft's own apt state (bookworm, bookworm-backports, trixie or sid; kept in the cache, never
in the machine's sources). The default kernel is marked: the one linux-image-amd64 depends on.`,
		Example: `  graft kernel list
  graft kernel list --suite trixie
  graft kernel list --cached --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cache, err := kernel.OpenCache("")
			if err != nil {
				return err
			}
			trees, err := cache.Debian().List()
			if err != nil {
				return err
			}
			var entries []*kernelEntry
			// Kernels are the same by release and version; the suite is
			// known only from apt.
			key := func(k debian.Kernel) string { return k.Release + "=" + k.Version }
			byKey := map[string]*kernelEntry{}
			for _, t := range trees {
				e := &kernelEntry{Kernel: t.Kernel, Cached: partList(t.Parts), Tree: t}
				entries = append(entries, e)
				byKey[key(t.Kernel)] = e
			}
			var def debian.Kernel
			var defErr error
			var avail []debian.Kernel
			switch {
			case cachedOnly:
				def, defErr = debian.Resolve(ctx, "")
			case suite != "":
				def, defErr = cache.Debian().SuiteDefault(ctx, suite, "")
				if errors.Is(defErr, debian.ErrUnknownSuite) {
					return usageError{defErr}
				}
				if avail, err = cache.Debian().SuiteKernels(ctx, suite, ""); err != nil {
					return err
				}
				// Only the suite's kernels, cached or not.
				var kept []*kernelEntry
				for _, e := range entries {
					if slices.ContainsFunc(avail, func(k debian.Kernel) bool { return sameKernel(k, e.Kernel) }) {
						kept = append(kept, e)
					}
				}
				entries = kept
			default:
				def, defErr = debian.Resolve(ctx, "")
				if avail, err = debian.Available(ctx); err != nil {
					return err
				}
			}
			{
				for _, k := range avail {
					if e, ok := byKey[key(k)]; ok {
						e.Available = true
						e.Suite = k.Suite
						continue
					}
					e := &kernelEntry{Kernel: k, Available: true, Cached: []string{}}
					entries = append(entries, e)
					byKey[key(k)] = e
				}
			}
			if defErr == nil {
				if e, ok := byKey[key(def)]; ok {
					e.Default = true
				}
			}
			if asJSON {
				if entries == nil {
					entries = []*kernelEntry{}
				}
				return writeJSON(cmd.OutOrStdout(), entries)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "RELEASE\tVERSION\tSUITE\tCACHED\tDEFAULT")
			for _, e := range entries {
				suite := e.Suite
				if suite == "" {
					suite = "-"
				}
				cached := "-"
				if len(e.Cached) > 0 {
					cached = fmt.Sprint(e.Cached)
				}
				mark := ""
				if e.Default {
					mark = "*"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", e.Release, e.Version, suite, cached, mark)
			}
			return w.Flush()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON (with the cached paths)")
	c.Flags().BoolVar(&cachedOnly, "cached", false, "only the kernels in the cache (no apt look-up)")
	c.Flags().StringVar(&suite, "suite", "", "list the kernels of this Debian release: "+strings.Join(debian.Releases, ", "))
	return c
}

func partList(p debian.Part) []string {
	var out []string
	for _, x := range []debian.Part{debian.Image, debian.Headers, debian.Source, debian.Symbols} {
		if p&x != 0 {
			out = append(out, x.String())
		}
	}
	return out
}

func newKernelFetchCmd() *cobra.Command {
	var source, symbols, headersOnly, quiet, asJSON bool
	c := &cobra.Command{
		Use:   "fetch [RELEASE[=VERSION] | SUITE[:FLAVOUR] | running]",
		Short: "Fetch a kernel's image and headers (and optionally source and symbols) into the cache",
		Long: `Fetch the Debian packages of a kernel into graft's cache. Without RELEASE it fetches the current
candidate of linux-image-amd64; "running" fetches the kernel this machine runs; a suite name
(bookworm, bookworm-backports, trixie, sid) fetches that suite's default kernel, SUITE:cloud-amd64
or SUITE:rt-amd64 a flavour of it. Each download's size is shown as it starts. Parts already in
the cache are not fetched again; an interrupted fetch leaves nothing that looks complete, and
several graft processes may fetch at once.

  image    linux-image-REL: vmlinuz, config, modules (what graft vm boots)
  headers  linux-headers-REL, -common and linux-kbuild: Module.symvers, building modules
  source   linux-source-X.Y, unpacked (what graft build compiles)
  symbols  linux-image-REL-dbg, about 860 MB: only the real System.map and vmlinux are kept`,
		Example: `  graft kernel fetch
  graft kernel fetch trixie --source --symbols
  graft kernel fetch sid:cloud-amd64
  graft kernel fetch 6.1.0-57-amd64 --source
  graft kernel fetch 6.1.0-53-amd64=6.1.187-1 --symbols`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			release := ""
			if len(args) == 1 {
				release = args[0]
			}
			parts := debian.Image | debian.Headers
			if headersOnly {
				parts = debian.Headers
			}
			if source {
				parts |= debian.Source
			}
			if symbols {
				parts |= debian.Symbols
			}
			cache, err := kernel.OpenCache("")
			if err != nil {
				return err
			}
			t, err := cache.Resolve(cmd.Context(), kernel.ParseSpec(release), parts, fetchProgress(os.Stderr, quiet))
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), t)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s in %s\n", t, t.Parts, t.Dir)
			return nil
		},
	}
	f := c.Flags()
	f.BoolVar(&source, "source", false, "also fetch and unpack the kernel source")
	f.BoolVar(&symbols, "symbols", false, "also fetch the debug symbols (about 860 MB download)")
	f.BoolVar(&headersOnly, "headers-only", false, "fetch the headers but not the image")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress display")
	f.BoolVar(&asJSON, "json", false, "print the cached paths as JSON")
	return c
}

func sameKernel(a, b debian.Kernel) bool { return a.Release == b.Release && a.Version == b.Version }
