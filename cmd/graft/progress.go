package main

import (
	"fmt"
	"io"
	"os"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/graft-live/graft/distro/debian"
)

// isTerminal reports whether f is a terminal that shows progress bars:
// TERM=dumb says it does not (graft vm sets it in the guest, whose serial
// ports are terminals, when the host's output is not one).
func isTerminal(f *os.File) bool {
	return term.IsTerminal(int(f.Fd())) && os.Getenv("TERM") != "dumb"
}

// fetchProgress shows package downloads on w: a bar per download when w is
// a terminal, one line per step otherwise. quiet silences it.
func fetchProgress(w *os.File, quiet bool) debian.Progress {
	if quiet {
		return nil
	}
	if !isTerminal(w) {
		// One line per step of each package.
		last := ""
		return func(e debian.Event) {
			key := e.Phase + " " + e.Package
			if e.Phase != "done" && key != last {
				size := ""
				if e.Total > 0 {
					size = fmt.Sprintf(" (%.1f MB)", float64(e.Total)/1e6)
				}
				fmt.Fprintf(w, "graft: %s%s\n", key, size)
			}
			last = key
		}
	}
	var bar *progressbar.ProgressBar
	var cur string
	return func(e debian.Event) {
		key := e.Phase + " " + e.Package
		if bar == nil || key != cur {
			if bar != nil {
				bar.Finish()
				fmt.Fprintln(w)
			}
			cur = key
			total := e.Total
			if total <= 0 {
				total = -1
			}
			bar = progressbar.NewOptions64(total,
				progressbar.OptionSetWriter(io.Writer(w)),
				progressbar.OptionSetDescription(key),
				progressbar.OptionShowBytes(e.Total > 0),
				progressbar.OptionSetWidth(30),
				progressbar.OptionClearOnFinish())
		}
		if e.Phase == "done" {
			bar.Finish()
			bar = nil
			return
		}
		bar.Set64(e.Done)
	}
}
