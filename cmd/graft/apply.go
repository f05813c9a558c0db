package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/graft-live/graft/livepatch"
)

func newApplyCmd() *cobra.Command {
	var opts livepatch.Options
	var quiet bool
	c := &cobra.Command{
		Use:   "apply FILE.ko [PARAM=VALUE...]",
		Short: "Load a livepatch module and wait until every task runs the patched code",
		Long: `Load a livepatch module into the running kernel and follow its transition: the kernel switches
each task to the patched functions when it is safe for that task (the consistency model), and
graft shows how many tasks have switched.

graft first checks that FILE is a livepatch module (modinfo livepatch=Y) built for the running
kernel (vermagic), and refuses a truncated or corrupted file. It warns about kprobes on the
functions the patch replaces (debugfs kprobes/list, or tracefs kprobe_events): a probe inside an
old function stops firing once the new one runs. PARAM=VALUE arguments are passed to the module
like insmod's.

If the transition does not finish within --timeout, graft names each blocking task (pid, command,
and the patched function on its stack), reverses the transition and unloads the module, so that
nothing changed (exit 5). --keep-on-stall leaves it in transition instead.`,
		Example: `  sudo graft apply livepatch-fix.ko
  sudo graft apply livepatch-fix.ko --timeout 5m
  sudo graft apply test_klp_atomic_replace.ko replace=1 --no-wait`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Params = strings.Join(args[1:], " ")
			show := newTransitionDisplay(os.Stderr, quiet)
			opts.Progress = show.update
			opts.Warn = warn
			sys := livepatch.Open()
			start := time.Now()
			m, err := sys.Apply(cmd.Context(), args[0], opts)
			show.finish()
			if err != nil {
				return err
			}
			if opts.NoWait {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: loaded; transition in progress ('graft status' follows it)\n", m.Name)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: applied in %v\n", m.Name, time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	f := c.Flags()
	f.DurationVar(&opts.Timeout, "timeout", livepatch.DefaultTimeout, "give up on the transition after this long")
	f.BoolVar(&opts.NoWait, "no-wait", false, "return once the module is loaded, without following the transition")
	f.BoolVar(&opts.KeepOnStall, "keep-on-stall", false, "on timeout leave the patch in transition instead of reversing it")
	f.BoolVarP(&quiet, "quiet", "q", false, "no progress display")
	return c
}

// transitionDisplay shows transition progress on stderr as a bar, when
// stderr is a terminal (STYLE.md: progress only then).
type transitionDisplay struct {
	w     io.Writer
	tty   bool
	quiet bool
	bar   *progressbar.ProgressBar
}

func newTransitionDisplay(w *os.File, quiet bool) *transitionDisplay {
	return &transitionDisplay{w: w, tty: isTerminal(w), quiet: quiet}
}

func (d *transitionDisplay) update(p livepatch.Progress) {
	if d.quiet || !d.tty {
		return
	}
	if d.bar == nil {
		d.bar = progressbar.NewOptions(p.Total,
			progressbar.OptionSetWriter(d.w),
			progressbar.OptionSetDescription(p.Patch+": tasks "+p.Target),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionClearOnFinish())
	}
	d.bar.ChangeMax(p.Total)
	d.bar.Set(p.Done)
}

func (d *transitionDisplay) finish() {
	if d.bar != nil {
		d.bar.Finish()
		d.bar = nil
	}
}
