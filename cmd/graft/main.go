// Command graft builds, checks, applies and manages Linux livepatches.
//
// Each subcommand is a thin layer over one library package; see the package
// documentation of github.com/graft-live/graft/... for the details.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/graft-live/graft/vm/guest"
)

func main() {
	// Inside a graft VM the same binary is the guest's init (PID 1).
	if guest.IsInit() {
		guest.Main()
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	code := exitCode(err)
	if err != nil && !isSilent(err) {
		fmt.Fprintf(os.Stderr, "graft: %v\n", err)
	}
	os.Exit(code)
}
