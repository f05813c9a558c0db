package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/graft-live/graft/livepatch"
)

func newStatusCmd() *cobra.Command {
	var asJSON, check bool
	var format string
	c := &cobra.Command{
		Use:   "status",
		Short: "Show the livepatches of the running kernel, their transitions and who owns each function",
		Long: `Show every loaded livepatch: enabled or not, in transition (with how many tasks have switched),
replace mode (where the kernel tells), its objects and whether each is patched, its functions with
sympos, and which patch currently runs each function (the newest enabled patch that has it). Tasks a
transition waits for are listed with the patched function on their stack.

The overall state is ready (no transition), in_progress, or stalled (a pending task sits in a
function the transition replaces). --check prints nothing and exits 0 when ready, 7 when in
progress, 5 when stalled.`,
		Example: `  graft status
  graft status --json | jq '.patches[].name'
  graft status --check || echo "a livepatch transition is not finished"
  graft status --format prometheus > /var/lib/node_exporter/textfile/graft.prom`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := livepatch.Open().ReadStatus()
			if err != nil {
				return err
			}
			if check {
				switch st.State {
				case livepatch.StateStalled:
					return silentError{exitStalled}
				case livepatch.StateInProgress:
					return silentError{exitInProgress}
				}
				return nil
			}
			out := cmd.OutOrStdout()
			switch {
			case asJSON || format == "json":
				return writeJSON(out, st)
			case format == "prometheus":
				return st.WritePrometheus(out)
			case format == "text" || format == "":
				return st.WriteText(out)
			}
			return usageError{fmt.Errorf("--format %q: want text, json or prometheus", format)}
		},
	}
	f := c.Flags()
	f.BoolVar(&asJSON, "json", false, "print JSON (same as --format json)")
	f.BoolVar(&check, "check", false, "print nothing; exit 0 ready, 7 in progress, 5 stalled")
	f.StringVar(&format, "format", "text", "text, json or prometheus (node_exporter textfile format)")
	return c
}
