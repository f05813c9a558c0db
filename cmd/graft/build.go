package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/graft-live/graft/build"
	"github.com/graft-live/graft/kernel"
)

func newBuildCmd() *cobra.Command {
	var (
		opts          build.Options
		release, sign string
		asJSON, quiet bool
		verbose       bool
	)
	c := &cobra.Command{
		Use:   "build [flags] PATCH...",
		Short: "Build a livepatch module from source patches for a kernel",
		Long: `Build a livepatch module (.ko) from unified diffs of the kernel source, as git diff, git
format-patch or diff -u write them. The patches are applied in order to the target kernel's
pristine source (hunks may sit at other lines than the diff says, as with patch(1)).

graft compiles only the files the patches change, each twice (original and patched) with the
target's exact flags, compares the objects function by function, and builds a module that
carries the changed and new functions with what they need; everything else they use is reached
in the running kernel: exported symbols by name, the rest through klp relocations (with sympos
for duplicated local names). A changed function that ftrace cannot redirect (notrace, such as
the body of a SYSCALL_DEFINE) is reached through its callers, which are replaced instead.

Changes a livepatch cannot make are refused with a finding (exit 6), each with its reason and
what to do: changed __init code, changed data, assembly, a changed build, and more. --allow ID
builds anyway and records that in the report.

The target is a Debian kernel release (--kernel; default: the running kernel). Its packages are
fetched into graft's cache on first use, including the debug symbols (about 860 MB) when the
patch changes vmlinux. The compiler must be the one that built the kernel.

The report lists each replaced function with its reasons, each klp relocation and each finding;
it is also written as JSON beside the module (OUT.json).`,
		Example: `  graft build examples/cmdline.patch --kernel 6.1.0-56-amd64
  graft build fix-1.patch fix-2.patch -o livepatch-fixes.ko --name livepatch-fixes
  graft build --json upstream-fix.patch > report.json
  sudo graft apply livepatch-cmdline.ko`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Patches = args
			if release == "" {
				opts.Kernel = kernel.Spec{Running: true}
			} else {
				opts.Kernel = kernel.ParseSpec(release)
			}
			if sign != "" {
				opts.SignKey, opts.SignCert, _ = strings.Cut(sign, ",")
			}
			if verbose {
				opts.Log = os.Stderr
			}
			if !quiet {
				opts.Fetch = fetchProgress(os.Stderr, false)
				if isTerminal(os.Stderr) {
					opts.Progress = stageProgress(os.Stderr)
				}
			}
			rep, err := build.Build(cmd.Context(), opts)
			if rep != nil {
				var werr error
				if asJSON {
					werr = writeJSON(cmd.OutOrStdout(), rep)
				} else {
					werr = rep.WriteText(cmd.OutOrStdout())
				}
				if err == nil {
					err = werr
				}
			}
			var refused *build.RefusedError
			if rep != nil && errors.As(err, &refused) {
				// The report shows the findings; say only which.
				var ids []string
				for _, f := range refused.Findings {
					if !slices.Contains(ids, f.ID) {
						ids = append(ids, f.ID)
					}
				}
				fmt.Fprintf(os.Stderr, "graft: refused: %s (the report says why and what to do; --allow ID builds anyway)\n", strings.Join(ids, ", "))
				return silentError{exitRefused}
			}
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&release, "kernel", "", "target kernel: a Debian release (6.1.0-57-amd64; RELEASE=VERSION pins the package), a suite's default (bookworm, bookworm-backports, trixie, sid; SUITE:cloud-amd64 a flavour), or \"running\" (default)")
	f.StringVarP(&opts.Output, "output", "o", "", "module file to write (default NAME.ko)")
	f.StringVar(&opts.Name, "name", "", "module name (default livepatch-PATCH, from the first patch's file name)")
	f.BoolVar(&opts.NoReplace, "no-replace", false, "stack on earlier livepatches instead of replacing them (atomic replace is the default)")
	f.StringVar(&sign, "sign", "", "sign the module with `KEY[,CERT]` (PEM files; one file may hold both)")
	f.BoolVar(&opts.AllowCompilerMismatch, "allow-compiler-mismatch", false, "build with a compiler other than the one that built the kernel")
	f.StringArrayVar(&opts.Allow, "allow", nil, "do not stop at findings with this `ID` (repeatable; the report records it)")
	f.IntVar(&opts.MaxObjects, "max-objects", build.DefaultMaxObjects, "most objects a header change may compile")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress display")
	f.BoolVarP(&verbose, "verbose", "v", false, "show kbuild's output")
	return c
}

// stageProgress prints each stage of a build on w.
func stageProgress(w io.Writer) func(string) {
	return func(stage string) { fmt.Fprintf(w, "graft: %s\n", stage) }
}
