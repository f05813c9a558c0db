package main

import (
	"github.com/spf13/cobra"
)

// newRootCmd assembles the command tree. Every subcommand lives in its own
// file and is added here, one line each.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "graft",
		Short: "Build, check, apply and manage Linux livepatches",
		Long: `graft takes a kernel fix from a source diff to a running kernel without a reboot,
on top of the kernel's own livepatch engine (CONFIG_LIVEPATCH).

  graft build PATCH...          a livepatch module from source diffs, for a kernel
  graft check PATCH...          whether a change is safe to apply live, finding by finding
  graft kernel fetch            fetch a Debian kernel (image, headers, source) into the cache
  graft vm -- CMD ARGS...       run a command in a disposable VM of that kernel
  graft diff ORIG.o PATCHED.o   which functions a change touches, and why
  graft apply FILE.ko           load a livepatch and follow its transition
  graft status                  what is patched, by which patch; transitions and blockers
  graft revert NAME             disable and unload a livepatch
  graft install FILE.ko         re-apply a livepatch at every boot (graft boot, graft.service)

Every command has --help with examples. Exit codes are listed in 'graft help exit-codes'.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{err}
	})
	root.AddCommand(
		newVersionCmd(),
		newExitCodesHelp(),
		newKernelCmd(),
		newVMCmd(),
		newBuildCmd(),
		newCheckCmd(),
		newDiffCmd(),
		newApplyCmd(),
		newRevertCmd(),
		newStatusCmd(),
		newInstallCmd(),
		newUninstallCmd(),
		newBootCmd(),
		newForceCmd(),
		// graft:commands (one constructor per line; keep this marker)
	)
	return root
}
