package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/graft-live/graft/vm"
)

func newVMCmd() *cobra.Command {
	var (
		release, image, busybox, dmesg, mem, accel, appendArgs string
		files, env, modules                                    []string
		cpus                                                   int
		timeout                                                time.Duration
		quiet                                                  bool
	)
	c := &cobra.Command{
		Use:   "vm [flags] [-- CMD ARGS...]",
		Short: "Run a command in a disposable VM of the target kernel",
		Long: `Boot the target kernel in QEMU with a small in-memory root file system and run CMD in it.

CMD runs as root with busybox applets and graft on PATH, /proc, /sys and debugfs mounted, and no
network or disk: the VM and everything in it disappear when CMD exits. CMD is executed directly,
not by a shell; run 'sh -c "..."' for pipes and redirections. Its stdout and stderr reach graft's
stdout and stderr unchanged (kernel messages stay apart, see --dmesg), and graft exits with CMD's
exit status. The output travels over an emulated serial port (about 300 KB/s under TCG).
CMD's stdin is empty. Without CMD, graft gives you an interactive shell on the VM's
console when stdin is a terminal, and otherwise runs the shell script that stdin holds (its
output and status come back like CMD's).

The kernel is a Debian kernel fetched into the cache on first use (see 'graft kernel'); --kernel
picks the release, --kernel-image boots a kernel file of your own. QEMU emulates the CPU (TCG);
KVM is used only when a quick probe shows that it boots on this host.`,
		Example: `  # the guest's kernel command line
  graft vm -- cat /proc/cmdline

  # try a livepatch module in the guest
  graft vm --file ./livepatch-fix.ko:/fix.ko -- sh -c 'insmod /fix.ko && cat /proc/cmdline'

  # a specific Debian kernel, more memory, keep the kernel log
  graft vm --kernel 6.1.0-56-amd64 --mem 2G --dmesg dmesg.txt -- uname -a

  # load a module of the target kernel (and what it depends on) first
  graft vm --module vsock_loopback -- cat /proc/modules

  # a script from stdin
  graft vm < check.sh

  # an interactive shell (exit or Ctrl-D powers the VM off)
  graft vm`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			memMiB, err := parseMiB(mem)
			if err != nil {
				return usageError{fmt.Errorf("--mem: %w", err)}
			}
			script := len(args) == 0 && !isTerminal(os.Stdin)
			if script {
				args = []string{"sh", "-s"}
			}
			cfg := vm.Config{
				Argv: args, Env: env, Memory: memMiB, CPUs: cpus, Timeout: timeout,
				Accel: accel, Append: appendArgs, Stdout: os.Stdout, Stderr: os.Stderr,
				Terminal: isTerminal(os.Stderr),
			}
			if script {
				cfg.Stdin = os.Stdin
			}
			for _, f := range files {
				vf, err := vm.ParseFile(f)
				if err != nil {
					return usageError{err}
				}
				if _, err := os.Stat(vf.Host); err != nil {
					return fmt.Errorf("--file %s: %w", f, vm.ErrFileNotFound)
				}
				cfg.Initramfs.Files = append(cfg.Initramfs.Files, vf)
			}
			if cfg.Initramfs.Init, err = os.Executable(); err != nil {
				return err
			}
			if image != "" {
				if len(modules) > 0 {
					return usageError{fmt.Errorf("--module needs a Debian kernel (--kernel), not --kernel-image")}
				}
				cfg.Image, cfg.Initramfs.Busybox = image, busybox
			} else {
				t, err := vm.PrepareTarget(cmd.Context(), release, fetchProgress(os.Stderr, quiet))
				if err != nil {
					return err
				}
				cfg.Image, cfg.Initramfs.Busybox = t.Image, t.Busybox
				if busybox != "" {
					cfg.Initramfs.Busybox = busybox
				}
				mods, order, err := vm.Modules(t.Kernel.ModulesDir, modules)
				if err != nil {
					return err
				}
				cfg.Initramfs.Files = append(cfg.Initramfs.Files, mods...)
				cfg.Modules = order
			}
			if dmesg != "" {
				f, err := os.Create(dmesg)
				if err != nil {
					return fmt.Errorf("--dmesg: %w", err)
				}
				defer f.Close()
				cfg.Console = f
			}
			code, err := vm.Exec(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			if code != 0 {
				return silentError{code}
			}
			return nil
		},
	}
	c.Flags().SetInterspersed(false)
	f := c.Flags()
	f.StringVar(&release, "kernel", "", "Debian kernel to boot: a release (6.1.0-57-amd64) or a suite's default (trixie, sid, ...) (default: the current linux-image-amd64)")
	f.StringVar(&image, "kernel-image", "", "boot this kernel file (ELF vmlinux or bzImage) instead of a Debian release")
	f.StringVar(&busybox, "busybox", "", "static busybox binary for the guest (default: Debian's busybox-static from the cache)")
	f.StringArrayVar(&files, "file", nil, "copy the file or directory `HOST[:GUEST]` into the guest (repeatable; GUEST defaults to HOST if absolute, else /BASENAME)")
	f.StringArrayVarP(&modules, "module", "m", nil, "load the target's kernel `MODULE` and its dependencies before CMD (repeatable)")
	f.StringArrayVarP(&env, "env", "e", nil, "set `KEY=VALUE` in CMD's environment (repeatable)")
	f.StringVar(&mem, "mem", "1G", "guest memory (e.g. 512M, 2G)")
	f.IntVar(&cpus, "cpus", 2, "guest CPUs")
	f.DurationVar(&timeout, "timeout", 5*time.Minute, "kill the VM after this long (exit 124)")
	f.StringVar(&dmesg, "dmesg", "", "write the guest's kernel log to `FILE`")
	f.StringVar(&accel, "accel", "auto", "accelerator: auto (KVM if a probe boots, else TCG), tcg or kvm")
	f.StringVar(&appendArgs, "append", "", "extra kernel command line arguments")
	f.BoolVarP(&quiet, "quiet", "q", false, "no download progress")
	return c
}

// parseMiB parses a memory size such as 512M, 2G or 1024 (MiB).
func parseMiB(s string) (int, error) {
	s = strings.TrimSpace(strings.ToUpper(s))
	mult := 1
	switch {
	case strings.HasSuffix(s, "G"):
		mult, s = 1024, strings.TrimSuffix(s, "G")
	case strings.HasSuffix(s, "M"):
		s = strings.TrimSuffix(s, "M")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a size like 512M or 2G", s)
	}
	return n * mult, nil
}
