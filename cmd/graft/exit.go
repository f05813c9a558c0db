package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/graft-live/graft/build"
	"github.com/graft-live/graft/distro/debian"
	"github.com/graft-live/graft/elfobj"
	"github.com/graft-live/graft/kbuild"
	"github.com/graft-live/graft/kernel"
	"github.com/graft-live/graft/klp"
	"github.com/graft-live/graft/livepatch"
	"github.com/graft-live/graft/objdiff"
	"github.com/graft-live/graft/srcpatch"
	"github.com/graft-live/graft/store"
	"github.com/graft-live/graft/vm"
)

// Exit codes: the one place where errors become process status. Keep
// exitCodeDocs below in sync; 'graft help exit-codes' prints it.
const (
	exitOK          = 0
	exitFailure     = 1   // any error not listed below
	exitUsage       = 2   // bad flags or arguments
	exitNotFound    = 3   // a named thing does not exist: kernel release, file, patch
	exitEnvironment = 4   // the machine lacks something: qemu, root, CONFIG_LIVEPATCH
	exitStalled     = 5   // a livepatch transition did not finish in time
	exitRefused     = 6   // the input was refused: not a livepatch, wrong kernel, a patch that does not apply or compile, unsafe change
	exitInProgress  = 7   // graft status --check: a transition is still in progress
	exitTimeout     = 124 // graft vm: the guest did not finish before --timeout
	exitVMFailed    = 125 // graft vm: the VM itself failed, the command's status is unknown
	exitInterrupted = 130 // interrupted by Ctrl-C or SIGTERM; everything was cleaned up
)

const exitCodeDocs = `graft exits with:
  0    success
  1    failure not covered below (the message says what failed)
  2    bad flags or arguments
  3    something named does not exist (kernel release, file, patch)
  4    the machine lacks something graft needs (qemu, root, CONFIG_LIVEPATCH, the compiler
       that built the kernel, the kernel's symbols)
  5    a livepatch transition did not finish in time (blocking tasks are listed)
  6    the input was refused (not a livepatch, built for another kernel, corrupted, already
       loaded, signature refused, refused by the kernel with its reason; a patch that does not
       apply or compile, changes nothing, or makes a change a livepatch cannot make)
  7    graft status --check: a transition is still in progress
  124  graft vm: the guest did not finish before --timeout (last console lines are shown)
  125  graft vm: the VM failed before the command's status was known
  130  interrupted (Ctrl-C); the VM and temporary files were removed

graft vm -- CMD exits with CMD's own status when CMD ran.`

// exitCodes maps sentinel errors to exit codes; the first match wins.
var exitCodes = []struct {
	err  error
	code int
}{
	{context.Canceled, exitInterrupted},
	{debian.ErrUnknownRelease, exitNotFound},
	{debian.ErrUnknownSuite, exitUsage},
	{debian.ErrNoAPT, exitEnvironment},
	{vm.ErrNoQEMU, exitEnvironment},
	{vm.ErrFileNotFound, exitNotFound},
	{vm.ErrTimeout, exitTimeout},
	{vm.ErrVM, exitVMFailed},
	{vm.ErrUnknownModule, exitNotFound},
	{livepatch.ErrNotRoot, exitEnvironment},
	{livepatch.ErrNoLivepatch, exitEnvironment},
	{livepatch.ErrStalled, exitStalled},
	{livepatch.ErrNotFound, exitNotFound},
	{livepatch.ErrNotLivepatch, exitRefused},
	{livepatch.ErrWrongKernel, exitRefused},
	{livepatch.ErrCorrupt, exitRefused},
	{livepatch.ErrAlreadyLoaded, exitRefused},
	{livepatch.ErrSignature, exitRefused},
	{livepatch.ErrRefused, exitRefused},
	{livepatch.ErrNotInTransition, exitRefused},
	{store.ErrNotInstalled, exitNotFound},
	{store.ErrChecksum, exitRefused},
	{os.ErrNotExist, exitNotFound},
	{os.ErrPermission, exitEnvironment},
	{objdiff.ErrIncompatible, exitRefused},
	{elfobj.ErrNotRelocatable, exitRefused},
	{build.ErrBadInput, exitUsage},
	{build.ErrRefused, exitRefused},
	{build.ErrNoChanges, exitRefused},
	{srcpatch.ErrNotAPatch, exitRefused},
	{srcpatch.ErrDoesNotApply, exitRefused},
	{srcpatch.ErrUnsupported, exitRefused},
	{kbuild.ErrCompile, exitRefused},
	{kbuild.ErrCompilerMismatch, exitEnvironment},
	{kbuild.ErrMissingPackages, exitEnvironment},
	{kernel.ErrNoSymbols, exitEnvironment},
	{kernel.ErrNoModule, exitNotFound},
	{klp.ErrUnsupported, exitRefused},
	// graft:exit-codes (sentinel → code, one per line; keep this marker)
}

// usageError marks errors in flags or arguments.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// silentError carries an exit status that needs no message, such as the
// status of a command run by graft vm.
type silentError struct{ code int }

func (e silentError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func isSilent(err error) bool {
	var s silentError
	return errors.As(err, &s)
}

func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var s silentError
	if errors.As(err, &s) {
		return s.code
	}
	var u usageError
	if errors.As(err, &u) || isCobraUsage(err) {
		return exitUsage
	}
	for _, m := range exitCodes {
		if errors.Is(err, m.err) {
			return m.code
		}
	}
	return exitFailure
}

// isCobraUsage recognises the argument-count errors cobra returns as plain
// strings (cobra.ExactArgs and friends, unknown commands).
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "accepts ", "requires at least", "requires at most", "received "} {
		if strings.HasPrefix(msg, p) || strings.Contains(msg, " arg(s), received ") {
			return true
		}
	}
	return false
}

func newExitCodesHelp() *cobra.Command {
	return &cobra.Command{
		Use:   "exit-codes",
		Short: "The exit codes of graft and what they mean",
		Long:  exitCodeDocs,
	}
}
