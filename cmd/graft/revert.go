package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/graft-live/graft/kmod"
	"github.com/graft-live/graft/livepatch"
)

func newRevertCmd() *cobra.Command {
	var opts livepatch.Options
	var all, quiet bool
	c := &cobra.Command{
		Use:   "revert NAME|FILE.ko... | --all",
		Short: "Disable livepatches, wait for the transition back, and unload them",
		Long: `Disable a livepatch, follow the transition back to the original code with the same progress
display and blocker report as apply, then unload its module. NAME is the patch (module) name as
'graft status' shows it; a .ko file stands for the patch it contains. --all reverts every loaded
patch, newest first.`,
		Example: `  sudo graft revert livepatch_fix
  sudo graft revert ./livepatch-fix.ko
  sudo graft revert --all`,
		RunE: func(cmd *cobra.Command, args []string) error {
			sys := livepatch.Open()
			if all == (len(args) > 0) {
				return usageError{errors.New("name the patches to revert, or give --all")}
			}
			names := args
			if all {
				var err error
				if names, err = sys.RevertOrder(); err != nil {
					return err
				}
			}
			for _, n := range names {
				name := n
				if strings.HasSuffix(n, ".ko") {
					f, err := kmod.Open(n)
					if err != nil {
						return err
					}
					f.Close()
					name = f.Name
				}
				show := newTransitionDisplay(os.Stderr, quiet)
				opts.Progress = show.update
				err := sys.Revert(cmd.Context(), name, opts)
				show.finish()
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: reverted and unloaded\n", name)
			}
			if all && len(names) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no livepatches loaded")
			}
			return nil
		},
	}
	f := c.Flags()
	f.BoolVar(&all, "all", false, "revert every loaded livepatch, newest first")
	f.DurationVar(&opts.Timeout, "timeout", livepatch.DefaultTimeout, "give up on the transition after this long")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress display")
	return c
}

func newForceCmd() *cobra.Command {
	var sure bool
	c := &cobra.Command{
		Use:   "force NAME --yes-i-understand",
		Short: "Finish a stalled transition by force (the module can never be unloaded afterwards)",
		Long: `Mark every task of a patch in transition as switched, without the consistency model's check.
Use it only when the blocking tasks cannot be made to leave the patched functions and you know
that running old and new code side by side is safe for this patch.

The cost: the kernel can no longer prove that no task runs the old code, so the patch's module
can never be removed until the next reboot.`,
		Example: `  sudo graft force livepatch_fix --yes-i-understand`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprintf(os.Stderr, "graft: forcing %s: tasks that still run the old functions are switched without the safety check; the module can never be unloaded afterwards (until reboot)\n", args[0])
			if !sure {
				return usageError{errors.New("force needs --yes-i-understand")}
			}
			if err := livepatch.Open().Force(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: forced\n", args[0])
			return nil
		},
	}
	c.Flags().BoolVar(&sure, "yes-i-understand", false, "confirm that the module can never be unloaded afterwards")
	return c
}
