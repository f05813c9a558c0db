package main

import (
	"github.com/spf13/cobra"

	"github.com/graft-live/graft/objdiff"
)

func newDiffCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "diff ORIG.o PATCHED.o",
		Short: "Show which functions and data objects differ between two builds of one source file, and why",
		Long: `Compare two objects of one translation unit, compiled with -ffunction-sections -fdata-sections
(the original and the patched source), function by function. Each changed, new or removed function
or data object is listed with its reasons. Compiler clones (.isra, .constprop, .part, .cold) count as
their function, static locals are matched by the function that uses them, strings by their text,
and a function whose only difference is a moved __LINE__ in a warning or printk call is unchanged.

A changed function without an ftrace entry (notrace) is "unpatchable". A data object whose size
changed or a symbol whose type changed cannot be done by a livepatch: graft diff lists it as an
error and exits 6.`,
		Example: `  graft diff orig/fs/proc/cmdline.o patched/fs/proc/cmdline.o
  graft diff a.o b.o --json | jq '.changes[] | select(.status != "new")'`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			objdiff.TuneGC()
			res, err := objdiff.CompareFiles(args[0], args[1])
			if err != nil {
				return err
			}
			if asJSON {
				if err := writeJSON(cmd.OutOrStdout(), res); err != nil {
					return err
				}
			} else if err := res.WriteText(cmd.OutOrStdout()); err != nil {
				return err
			}
			return res.Err()
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return c
}
