package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/graft-live/graft/livepatch"
	"github.com/graft-live/graft/store"
)

func newInstallCmd() *cobra.Command {
	var release, dir string
	var list bool
	c := &cobra.Command{
		Use:   "install FILE.ko | --list",
		Short: "Install a livepatch so that 'graft boot' applies it at every boot of its kernel",
		Long: `Copy a livepatch module into /var/lib/graft/RELEASE/ and add it to that kernel's boot order,
recorded in manifest.json with its sha256. RELEASE is the kernel the module was built for
(its vermagic); --kernel must agree with it. Installing a patch of the same name again replaces
it in place. install does not load anything now: use 'graft apply' for that.

At boot, the graft.service systemd unit runs 'graft boot', which applies the installed patches
of the running kernel in order.`,
		Example: `  sudo graft install livepatch-fix.ko
  sudo graft install --list
  sudo graft install --list --kernel 6.1.0-56-amd64`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st := store.Open(dir)
			if list || len(args) == 0 {
				if release == "" {
					var err error
					if release, err = livepatch.Open().Release(); err != nil {
						return err
					}
				}
				man, err := st.Manifest(release)
				if err != nil {
					return err
				}
				w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintf(w, "ORDER\tNAME\tINSTALLED\tSHA256\t(%s)\n", release)
				for _, e := range man.Patches {
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t\n", e.Order, e.Name, e.InstalledAt.Format("2006-01-02 15:04:05Z"), e.SHA256[:16])
				}
				return w.Flush()
			}
			e, err := st.Install(args[0], release)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: installed as #%d (sha256 %s)\n", e.Name, e.Order, e.SHA256[:16])
			return nil
		},
	}
	c.Flags().StringVar(&release, "kernel", "", "kernel release (default: the module's vermagic; for --list the running kernel)")
	c.Flags().BoolVar(&list, "list", false, "list the installed patches")
	c.Flags().StringVar(&dir, "store", store.DefaultDir, "store directory")
	return c
}

func newUninstallCmd() *cobra.Command {
	var release, dir string
	c := &cobra.Command{
		Use:   "uninstall NAME",
		Short: "Remove an installed livepatch from the boot order (the running kernel is not touched)",
		Example: `  sudo graft uninstall livepatch_fix
  sudo graft uninstall livepatch_fix --kernel 6.1.0-56-amd64`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if release == "" {
				var err error
				if release, err = livepatch.Open().Release(); err != nil {
					return err
				}
			}
			if err := store.Open(dir).Uninstall(args[0], release); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: uninstalled for %s\n", args[0], release)
			return nil
		},
	}
	c.Flags().StringVar(&release, "kernel", "", "kernel release (default: the running kernel)")
	c.Flags().StringVar(&dir, "store", store.DefaultDir, "store directory")
	return c
}

func newBootCmd() *cobra.Command {
	var dir string
	var asJSON bool
	var opts livepatch.Options
	c := &cobra.Command{
		Use:   "boot",
		Short: "Apply the installed livepatches of the running kernel (run at boot by graft.service)",
		Long: `Apply, in their installed order, the livepatches installed for the running kernel, checking each
file against its recorded sha256 first. Patches already loaded are skipped; a patch that fails is
reported and the others are still applied (exit 1 if any failed). Nothing happens when nothing is
installed, or when the kernel command line has graft.enable=0.`,
		Example: `  sudo graft boot
  systemctl enable graft.service   # dist/systemd/graft.service runs 'graft boot'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Warn = warn
			res, err := store.Open(dir).Boot(cmd.Context(), livepatch.Open(), opts)
			if res != nil {
				if asJSON {
					if jerr := writeJSON(cmd.OutOrStdout(), res); jerr != nil {
						return jerr
					}
				} else {
					switch {
					case res.Disabled:
						fmt.Fprintln(cmd.OutOrStdout(), "graft.enable=0 on the kernel command line: no patches applied")
					case len(res.Applied)+len(res.Skipped)+len(res.Failed) == 0:
						fmt.Fprintf(cmd.OutOrStdout(), "no patches installed for %s\n", res.Release)
					default:
						fmt.Fprintf(cmd.OutOrStdout(), "%s: applied %v, already loaded %v, failed %v\n", res.Release, res.Applied, res.Skipped, res.Failed)
					}
				}
			}
			return err
		},
	}
	c.Flags().StringVar(&dir, "store", store.DefaultDir, "store directory")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	c.Flags().DurationVar(&opts.Timeout, "timeout", livepatch.DefaultTimeout, "per-patch transition timeout")
	return c
}
