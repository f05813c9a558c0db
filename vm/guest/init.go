package guest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// IsInit reports whether this process is the init of a graft VM: PID 1 with
// a Config in the initramfs.
func IsInit() bool {
	if os.Getpid() != 1 {
		return false
	}
	_, err := os.Stat(ConfigPath)
	return err == nil
}

// Main runs the guest init and powers the machine off; it never returns.
func Main() {
	var ctl *os.File
	err := setup()
	if err == nil {
		ctl, err = os.OpenFile(controlTTY, os.O_WRONLY, 0)
	}
	var code int
	if err == nil {
		code, err = run()
	}
	if ctl != nil {
		makeRaw(ctl)
		if err != nil {
			fmt.Fprint(ctl, FormatError(err.Error()))
		} else {
			fmt.Fprint(ctl, FormatExit(code))
		}
		drain(ctl)
	} else if err != nil {
		// Without the control port the console is the only way out.
		fmt.Fprintf(os.Stderr, "graft init: %v\n", err)
	}
	unix.Sync()
	for {
		unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	}
}

// setup mounts the pseudo file systems and installs the busybox applets.
func setup() error {
	mounts := []struct{ src, dst, fstype string }{
		{"proc", "/proc", "proc"},
		{"sysfs", "/sys", "sysfs"},
		{"devtmpfs", "/dev", "devtmpfs"},
		{"tmpfs", "/tmp", "tmpfs"},
		{"tmpfs", "/run", "tmpfs"},
		{"debugfs", "/sys/kernel/debug", "debugfs"},
	}
	for _, m := range mounts {
		if err := os.MkdirAll(m.dst, 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", m.dst, err)
		}
		if err := unix.Mount(m.src, m.dst, m.fstype, 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s on %s: %w", m.fstype, m.dst, err)
		}
	}
	for _, d := range []string{"/root", "/var/lib", "/usr/bin", "/usr/sbin", "/sbin"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("mkdir %s: %w", d, err)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err == nil {
		out, err := exec.Command("/bin/busybox", "--install", "-s", "/bin").CombinedOutput()
		if err != nil {
			return fmt.Errorf("busybox --install: %v: %s", err, out)
		}
	}
	unix.Sethostname([]byte("graft-vm"))
	os.Setenv("PATH", "/bin:/sbin:/usr/bin:/usr/sbin")
	os.Setenv("HOME", "/root")
	os.Setenv(EnvInGuest, "1")
	return nil
}

func run() (int, error) {
	cfg, err := readConfig()
	if err != nil {
		return 0, err
	}
	for _, m := range cfg.Modules {
		if err := loadModule(m); err != nil {
			return 0, err
		}
	}
	env := mergeEnv(os.Environ(), cfg.Env)
	dir := cfg.Dir
	if dir == "" {
		dir = "/"
	}
	if len(cfg.Argv) == 0 {
		return shell(env, dir)
	}
	return command(cfg.Argv, cfg.Stdin, env, dir)
}

// command runs argv with its output on the stdout and stderr ports.
func command(argv []string, stdinPath string, env []string, dir string) (int, error) {
	stdout, err := openRaw(stdoutTTY)
	if err != nil {
		return 0, err
	}
	stderr, err := openRaw(stderrTTY)
	if err != nil {
		return 0, err
	}
	if stdinPath == "" {
		stdinPath = os.DevNull
	}
	stdin, err := os.Open(stdinPath)
	if err != nil {
		return 0, err
	}
	path, err := lookPath(argv[0])
	if err != nil {
		fmt.Fprintf(stderr, "graft vm: %v\n", err)
		drain(stderr)
		return 127, nil
	}
	code, err := start(path, argv, env, dir, []*os.File{stdin, stdout, stderr}, false)
	drain(stdout)
	drain(stderr)
	return code, err
}

// shell runs an interactive shell on the console.
func shell(env []string, dir string) (int, error) {
	tty, err := os.OpenFile(consoleTTY, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	fmt.Fprintln(tty, "graft vm: interactive shell; exit or Ctrl-D powers the VM off (Ctrl-A X quits QEMU)")
	env = append(env, "PS1=graft-vm:\\w# ", "TERM=linux")
	return start("/bin/sh", []string{"sh"}, env, dir, []*os.File{tty, tty, tty}, true)
}

// start runs one process and reaps every child until that process exits:
// as PID 1 the init inherits all orphans.
func start(path string, argv, env []string, dir string, files []*os.File, ctty bool) (int, error) {
	attr := &os.ProcAttr{Dir: dir, Env: env, Files: files}
	if ctty {
		attr.Sys = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	}
	p, err := os.StartProcess(path, argv, attr)
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", argv[0], err)
	}
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("wait for %s: %w", argv[0], err)
		}
		if pid != p.Pid {
			continue
		}
		switch {
		case ws.Exited():
			return ws.ExitStatus(), nil
		case ws.Signaled():
			return 128 + int(ws.Signal()), nil
		}
	}
}

// mergeEnv adds extra to base; a key in extra replaces the same key in base
// (the kernel starts init with TERM=linux, for one).
func mergeEnv(base, extra []string) []string {
	keys := map[string]bool{}
	for _, kv := range extra {
		k, _, _ := strings.Cut(kv, "=")
		keys[k] = true
	}
	var env []string
	for _, kv := range base {
		if k, _, _ := strings.Cut(kv, "="); !keys[k] {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func lookPath(name string) (string, error) {
	if filepath.IsAbs(name) || filepath.Base(name) != name {
		return name, nil
	}
	return exec.LookPath(name)
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("load module: %w", err)
	}
	defer f.Close()
	if err := unix.FinitModule(int(f.Fd()), "", 0); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("load module %s: %w", path, err)
	}
	return nil
}

func openRaw(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	makeRaw(f)
	return f, nil
}

// makeRaw turns off output processing so that bytes reach the host as
// written (no "\n" to "\r\n").
func makeRaw(f *os.File) {
	t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		return
	}
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Iflag &^= unix.ICRNL | unix.IXON
	unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, t)
}

// drain waits until the port has sent everything (tcdrain).
func drain(f *os.File) {
	unix.IoctlSetInt(int(f.Fd()), unix.TCSBRK, 1)
}
