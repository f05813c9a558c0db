package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/graft-live/graft/build"
	"github.com/graft-live/graft/kernel"
)

func newCheckCmd() *cobra.Command {
	var (
		opts          build.Options
		release       string
		asJSON, quiet bool
	)
	c := &cobra.Command{
		Use:   "check [flags] PATCH...",
		Short: "Tell, before anything is loaded, whether a change is safe to apply live",
		Long: `Check source patches against the livepatch consistency model without building a module:
graft applies them, compiles the changed objects (original and patched) and compares them, as
graft build does, and reports every finding, one block each, with the source line, what it means
for a running kernel and what to do instead:

  init-changed          __init/__exit code changed; it ran at boot and will not run again
  data-changed          the initial value or size of existing data changed
  struct-layout         a struct or union's size or member offsets changed (DWARF)
  new-data-section      new data whose section a livepatch module cannot honour (__ro_after_init)
  header-change         a changed header: how many objects it compiles, what changed because of it
  no-ftrace             a changed function ftrace cannot redirect, whose callers cannot be replaced
  static-key            new code using a static key of a module (static-call: a static call)
  static-local-dropped  a changed function no longer uses its static variable: state resets
  prototype-changed     a global function's prototype changed; callers elsewhere pass old arguments
  never-returns         a function tasks never leave (the scheduler, idle, a kthread's loop)
  asm-changed, build-changed, not-built, file-removed

The last line counts the errors and warnings. graft build runs the same checks and stops at
errors; --allow ID lets one through (and the report says so). Exit 0 without errors, 6 with.`,
		Example: `  graft check fix.patch --kernel 6.1.0-56-amd64
  graft check --json fix.patch | jq '.findings[] | select(.severity == "error")'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Patches, opts.CheckOnly = args, true
			if release == "" {
				opts.Kernel = kernel.Spec{Running: true}
			} else {
				opts.Kernel = kernel.ParseSpec(release)
			}
			if !quiet {
				opts.Fetch = fetchProgress(os.Stderr, false)
				if isTerminal(os.Stderr) {
					opts.Progress = stageProgress(os.Stderr)
				}
			}
			rep, err := build.Build(cmd.Context(), opts)
			var refused *build.RefusedError
			if rep == nil || err != nil && !errors.As(err, &refused) {
				// Nothing was checked: the error says why.
				return err
			}
			if asJSON {
				if werr := writeJSON(cmd.OutOrStdout(), rep); werr != nil {
					return werr
				}
				return err
			}
			out := cmd.OutOrStdout()
			for _, f := range rep.Functions {
				fmt.Fprintf(out, "replaces %s:%s (%s)\n", f.Object, f.Name, f.Unit)
			}
			rep.WriteFindings(out)
			fmt.Fprintln(out, rep.Summary())
			if refused != nil {
				// The findings are the message.
				return silentError{exitRefused}
			}
			return err
		},
	}
	f := c.Flags()
	f.StringVar(&release, "kernel", "", "target kernel: a Debian release (6.1.0-57-amd64), a suite's default (trixie, sid, ...), or \"running\" (default)")
	f.StringArrayVar(&opts.Allow, "allow", nil, "report the finding `ID` as a warning (repeatable)")
	f.IntVar(&opts.MaxObjects, "max-objects", build.DefaultMaxObjects, "most objects a header change may compile")
	f.BoolVar(&opts.AllowCompilerMismatch, "allow-compiler-mismatch", false, "check with a compiler other than the one that built the kernel")
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress display")
	return c
}
