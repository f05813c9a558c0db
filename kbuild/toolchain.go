package kbuild

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/graft-live/graft/internal/flock"
)

// Toolchain is where kbuild's commands run: on the host, or inside a root
// file system of the kernel's Debian release that holds the compiler the
// kernel was built with (a compiler of another release cannot run on the
// host: it needs that release's C library).
type Toolchain struct {
	// Root is the root file system ("" = the host).
	Root string
	// Binds are host directories that commands in Root see at the same
	// path: the trees and work directories in graft's cache.
	Binds []string
	// CC is the C compiler program that built the kernel ("gcc-12",
	// "gcc-14"), which make is told to use for the kernel and its host
	// programs; "" leaves make's default (gcc).
	CC string
}

// WithCompiler returns a copy of tc that makes with the C compiler the
// kernel of headersDir was built with (the CC its headers pin).
func (tc *Toolchain) WithCompiler(headersDir string) *Toolchain {
	c := *tc
	c.CC = compilerFor(headersDir)
	return &c
}

// OnHost reports whether kbuild runs on this machine rather than in a root
// file system.
func (tc *Toolchain) OnHost() bool { return tc == nil || tc.Root == "" }

// Host runs kbuild on this machine.
var Host = &Toolchain{}

func (tc *Toolchain) String() string {
	if tc.OnHost() {
		return "the host"
	}
	return "the root file system " + tc.Root
}

// inRoot is the script that enters a root: the pseudo file systems and the
// binds mounted in a private mount namespace, then chroot. Arguments: root,
// directory, binds..., "--", command...
const inRoot = `r=$1; d=$2; shift 2
for m in proc sys dev; do mount --rbind /$m "$r/$m"; done
while [ "$1" != "--" ]; do mkdir -p "$r$1"; mount --bind "$1" "$r$1"; shift; done
shift
exec chroot "$r" /bin/sh -c 'cd "$0" && exec "$@"' "$d" "$@"`

// Command returns the command that runs name with args in dir, on the host
// or in the root. Commands in a root run in their own mount namespace
// (unshare, as root or in a user namespace), which ends with them.
func (tc *Toolchain) Command(ctx context.Context, dir, name string, args ...string) *exec.Cmd {
	if tc.OnHost() {
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		return cmd
	}
	if dir == "" {
		dir = "/"
	}
	uargs := []string{"--mount", "--propagation", "private", "--fork"}
	if os.Geteuid() != 0 {
		uargs = append(uargs, "--map-root-user")
	}
	uargs = append(uargs, "--", "sh", "-ec", inRoot, "sh", tc.Root, dir)
	uargs = append(uargs, tc.Binds...)
	uargs = append(append(uargs, "--", name), args...)
	return exec.CommandContext(ctx, "unshare", uargs...)
}

// rootPackages are what kbuild needs in a root besides the compiler.
var rootPackages = []string{
	"make", "binutils", "libc6-dev", "flex", "bison", "bc", "libelf-dev", "libssl-dev", "python3",
	"dwarves", "kmod", "cpio", "xz-utils", "zstd", "perl", "rsync",
}

// MakeRoot returns a root file system of the Debian suite with the packages
// (the compiler, from the kernel headers' dependencies) and what kbuild
// needs, made once with mmdebstrap into dir and kept there. binds are the
// host directories commands see (see Toolchain.Binds). Several processes
// may make the same root at once. Progress lines go to log.
func MakeRoot(ctx context.Context, dir, suite string, packages, binds []string, log io.Writer) (*Toolchain, error) {
	tc := &Toolchain{Root: dir, Binds: binds}
	done := filepath.Join(dir, ".graft-root")
	if _, err := os.Stat(done); err == nil {
		return tc, nil
	}
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		return nil, fmt.Errorf("kbuild: a root file system of %s holds the kernel's compiler, and mmdebstrap makes it: apt-get install mmdebstrap", suite)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return nil, err
	}
	err := flock.Do(ctx, dir+".lock", func() error {
		if _, err := os.Stat(done); err == nil {
			return nil
		}
		tmp := dir + ".tmp"
		os.RemoveAll(tmp)
		defer os.RemoveAll(tmp)
		mirror := os.Getenv("GRAFT_DEBIAN_MIRROR")
		if mirror == "" {
			mirror = "http://deb.debian.org/debian"
		}
		pkgs := strings.Join(append(append([]string(nil), rootPackages...), packages...), ",")
		args := []string{"--variant=apt", "--include=" + pkgs, "--quiet"}
		// mmdebstrap runs apt with a configuration of its own: the
		// machine's settings for reaching the archive go in by hand.
		for _, opt := range hostAcquireOptions(ctx) {
			args = append(args, "--aptopt="+opt)
		}
		args = append(args, suite, tmp, "deb "+mirror+" "+suite+" main")
		if err := run(ctx, "", log, "mmdebstrap", args...); err != nil {
			return fmt.Errorf("make a root file system of %s: %w", suite, err)
		}
		if err := os.WriteFile(filepath.Join(tmp, ".graft-root"), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
			return err
		}
		os.RemoveAll(dir)
		return os.Rename(tmp, dir)
	})
	if err != nil {
		return nil, fmt.Errorf("kbuild: %w", err)
	}
	return tc, nil
}

// hostAcquireOptions are the machine's apt settings for reaching the
// archive (apt-config dump): proxies, and the freshness checks of Release
// files, which a machine that uses a snapshot of the archive turns off.
func hostAcquireOptions(ctx context.Context) []string {
	out, err := exec.CommandContext(ctx, "apt-config", "dump").Output()
	if err != nil {
		return nil
	}
	var opts []string
	for _, line := range strings.Split(string(out), "\n") {
		key, _, _ := strings.Cut(line, " ")
		if acquireKey.MatchString(key) {
			opts = append(opts, line)
		}
	}
	return opts
}

var acquireKey = regexp.MustCompile(`(?i)^Acquire::((https?|ftp)::Proxy(::[^ ]*)?|Check-Valid-Until|Check-Date)$`)

// setpgid makes cmd a process group leader, so that cancelling kills its
// children (the compiler, or everything in a root) with it.
func setpgid(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
