package vm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/graft-live/graft/vm/guest"
)

// Config describes one VM run.
type Config struct {
	// Image is the kernel file to boot: an ELF vmlinux with a PVH entry
	// (fast under TCG, see Target.Image) or a bzImage.
	Image string
	// Initramfs describes the guest's files; Exec builds the archive.
	Initramfs Initramfs
	// Argv is the command to run in the guest. Empty means an interactive
	// shell on the console, connected to the host's terminal.
	Argv []string
	// Env is added to the command's environment (KEY=VALUE).
	Env []string
	// Dir is the command's working directory in the guest ("" = "/").
	Dir string
	// Modules are guest paths of kernel modules (among the Initramfs files)
	// that the guest loads, in order, before the command (see Modules).
	Modules []string
	// Memory in MiB (default 1024) and CPUs (default 2).
	Memory, CPUs int
	// Timeout kills the VM when it runs longer (0 = no limit).
	Timeout time.Duration
	// Accel is "tcg", "kvm" or "auto" (the default: KVM when a short probe
	// boot of Image under KVM succeeds on this host, else TCG; the verdict
	// is kept for the host's boot).
	Accel string
	// Append is added to the kernel command line.
	Append string
	// Stdout and Stderr receive the command's output (nil = discard).
	Stdout, Stderr io.Writer
	// Console receives the kernel console (the guest's kernel log as it
	// runs; nil = discard).
	Console io.Writer
	// Stdin is the command's standard input, read completely before the VM
	// boots (nil = /dev/null). With no Argv it is the terminal of the
	// interactive shell instead (nil = os.Stdin).
	Stdin io.Reader
	// Terminal says whether the command's output reaches a terminal on the
	// host. The guest's serial ports are terminals either way, so the guest
	// gets TERM=linux or TERM=dumb to tell programs which it is.
	Terminal bool
	// QEMU is the emulator binary (default qemu-system-x86_64 from PATH).
	QEMU string
}

// stdinGuestPath is where the command's input is in the guest.
const stdinGuestPath = "/graft/stdin"

// Exec boots the VM, runs the command and returns its exit status. A non-nil
// error means the status is unknown: the VM could not start (ErrNoQEMU,
// ErrFileNotFound), timed out (ErrTimeout), failed (ErrVM), or ctx was
// cancelled. The VM and every temporary file are gone when Exec returns.
func Exec(ctx context.Context, cfg Config) (int, error) {
	qemu := cfg.QEMU
	if qemu == "" {
		qemu = "qemu-system-x86_64"
	}
	qemuPath, err := exec.LookPath(qemu)
	if err != nil {
		return 0, ErrNoQEMU
	}
	if _, err := os.Stat(cfg.Image); err != nil {
		return 0, fmt.Errorf("kernel %s: %w", cfg.Image, err)
	}
	tmp, err := os.MkdirTemp("", "graft-vm-")
	if err != nil {
		return 0, fmt.Errorf("vm: %w", err)
	}
	defer os.RemoveAll(tmp)

	initrd := filepath.Join(tmp, "initramfs.cpio")
	ir := cfg.Initramfs
	term := "TERM=dumb"
	if cfg.Terminal {
		term = "TERM=linux"
	}
	gcfg := guest.Config{Argv: cfg.Argv, Env: append([]string{term}, cfg.Env...), Dir: cfg.Dir, Modules: cfg.Modules}
	if cfg.Stdin != nil && len(cfg.Argv) > 0 {
		// A serial port drops what arrives before the guest reads it, so
		// the input travels in the initramfs.
		in := filepath.Join(tmp, "stdin")
		f, err := os.Create(in)
		if err != nil {
			return 0, fmt.Errorf("read the command's input: %w", err)
		}
		_, err = io.Copy(f, cfg.Stdin)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return 0, fmt.Errorf("read the command's input: %w", err)
		}
		ir.Files = append(append([]File(nil), ir.Files...), File{Host: in, Guest: stdinGuestPath, Mode: 0o600})
		gcfg.Stdin = stdinGuestPath
	}
	if err := ir.write(initrd, gcfg); err != nil {
		return 0, err
	}

	accel := cfg.Accel
	if accel == "" || accel == "auto" {
		accel = "tcg"
		if probeKVM(ctx, qemuPath, cfg.Image) {
			accel = "kvm"
		}
	}
	if cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
	}
	return launch(ctx, qemuPath, accel, initrd, cfg)
}

// port is one serial port of the guest, read through a pipe.
type port struct {
	r, w *os.File
	done chan struct{}
}

func launch(ctx context.Context, qemuPath, accel, initrd string, cfg Config) (int, error) {
	interactive := len(cfg.Argv) == 0
	mem, cpus := cfg.Memory, cfg.CPUs
	if mem == 0 {
		mem = 1024
	}
	if cpus == 0 {
		cpus = 2
	}
	// The console has a port of its own, so the kernel may log at its
	// default level (measured: no slower to boot than with "quiet") and an
	// error can show the last lines; only an interactive shell, which shares
	// the console, asks for quiet.
	cmdline := "console=ttyS0 panic=-1 rdinit=/init"
	if interactive {
		cmdline += " quiet"
	}
	if cfg.Append != "" {
		cmdline += " " + cfg.Append
	}
	args := []string{
		"-nodefaults", "-display", "none", "-no-reboot",
		"-m", strconv.Itoa(mem), "-smp", strconv.Itoa(cpus),
		"-kernel", cfg.Image, "-initrd", initrd, "-append", cmdline,
	}
	switch accel {
	case "kvm":
		args = append(args, "-accel", "kvm", "-cpu", "host")
	default:
		args = append(args, "-accel", "tcg")
	}

	// Ports: ttyS0 console, ttyS1 stdout, ttyS2 stderr, ttyS3 control. QEMU
	// writes each to an inherited pipe, opened by path as /dev/fd/N.
	var console tail
	consoleOut := io.Writer(&console)
	if cfg.Console != nil {
		consoleOut = io.MultiWriter(&console, cfg.Console)
	}
	var control bytes.Buffer
	sinks := []io.Writer{consoleOut, orDiscard(cfg.Stdout), orDiscard(cfg.Stderr), &control}
	var ports []*port
	var extra []*os.File
	closeAll := func() {
		for _, p := range ports {
			p.r.Close()
			if p.w != nil {
				p.w.Close()
			}
		}
	}
	for i, sink := range sinks {
		if i == 0 && interactive {
			args = append(args, "-serial", "mon:stdio")
			continue
		}
		r, w, err := os.Pipe()
		if err != nil {
			closeAll()
			return 0, err
		}
		p := &port{r: r, w: w, done: make(chan struct{})}
		ports = append(ports, p)
		args = append(args, "-serial", fmt.Sprintf("file:/dev/fd/%d", 3+len(extra)))
		extra = append(extra, w)
		go func(sink io.Writer) {
			io.Copy(sink, r)
			close(p.done)
		}(sink)
	}

	cmd := exec.Command(qemuPath, args...)
	cmd.ExtraFiles = extra
	var qemuErr bytes.Buffer
	cmd.Stderr = &qemuErr
	if interactive {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = orStdin(cfg.Stdin), os.Stdout, os.Stderr
	}
	// Own process group, so that Ctrl-C on the terminal reaches graft (which
	// then kills QEMU) rather than QEMU directly, except in interactive mode
	// where QEMU owns the terminal and handles Ctrl-C itself.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: !interactive, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		closeAll()
		return 0, fmt.Errorf("start %s: %w", qemuPath, err)
	}
	for _, p := range ports {
		p.w.Close()
		p.w = nil
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()

	var werr error
	select {
	case werr = <-waitErr:
	case <-ctx.Done():
		cmd.Process.Kill()
		<-waitErr
		for _, p := range ports {
			<-p.done
		}
		closeAll()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return 0, &TimeoutError{After: cfg.Timeout, Console: console.lines(consoleTail)}
		}
		return 0, ctx.Err()
	}
	for _, p := range ports {
		<-p.done
	}
	closeAll()

	code, guestErr, ok := guest.ParseControl(control.Bytes())
	switch {
	case ok && guestErr == "":
		return code, nil
	case ok:
		return 0, &GuestError{Reason: "guest init: " + guestErr, Console: console.lines(consoleTail)}
	case werr != nil:
		msg := strings.TrimSpace(qemuErr.String())
		if msg == "" {
			msg = werr.Error()
		}
		return 0, &GuestError{Reason: "qemu: " + msg, Console: console.lines(consoleTail)}
	default:
		reason := "the guest stopped without reporting the command's exit status"
		if p := console.find("Kernel panic - not syncing: "); p != "" {
			reason = "the guest kernel panicked: " + p
		}
		return 0, &GuestError{Reason: reason, Console: console.lines(consoleTail)}
	}
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

func orStdin(r io.Reader) io.Reader {
	if r == nil {
		return os.Stdin
	}
	return r
}

// tail keeps the last lines written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailBytes = 64 << 10

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*tailBytes {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailBytes:]...)
	}
	return len(p), nil
}

// find returns what follows the last occurrence of marker on its line.
func (t *tail) find(marker string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := string(t.buf)
	i := strings.LastIndex(s, marker)
	if i < 0 {
		return ""
	}
	rest, _, _ := strings.Cut(s[i+len(marker):], "\n")
	return strings.TrimSpace(rest)
}

// oopsMarkers start the kernel's reports of a crash.
var oopsMarkers = []string{"BUG: ", "Oops: ", "general protection fault", "kernel BUG at", "WARNING: ", "Kernel panic - not syncing"}

// oopsLines is how many lines of a crash report an error keeps.
const oopsLines = 150

// lines returns the last n lines, or, when the kernel reported a crash, the
// report from its first line on (at most oopsLines): its top names what
// went wrong, which the last lines of a long trace no longer show.
func (t *tail) lines(n int) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, l := range strings.Split(string(t.buf), "\n") {
		l = strings.TrimRight(l, "\r")
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	for i, l := range out {
		for _, m := range oopsMarkers {
			if strings.Contains(l, m) {
				return out[i:min(len(out), i+oopsLines)]
			}
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}
