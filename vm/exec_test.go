package vm_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graft-live/graft/internal/fixtures"
	"github.com/graft-live/graft/internal/testenv"
	"github.com/graft-live/graft/internal/vmtest"
	"github.com/graft-live/graft/vm"
)

var (
	targetOnce sync.Once
	target     *vm.Target
	targetErr  error
)

// hostConfig prepares a Config that boots the test kernel (once per test
// process), or skips when QEMU is missing.
func hostConfig(t *testing.T) vm.Config {
	t.Helper()
	if vmtest.InGuest() {
		t.Skip("host-side test")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		testenv.SkipOrFail(t, "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
	}
	targetOnce.Do(func() {
		target, targetErr = vm.PrepareTarget(context.Background(), fixtures.Spec().Release, nil)
	})
	if targetErr != nil {
		t.Fatalf("prepare the guest kernel: %v", targetErr)
	}
	graft, err := vmtest.GraftBinary()
	if err != nil {
		t.Fatal(err)
	}
	return vm.Config{
		Image:     target.Image,
		Memory:    512,
		Timeout:   2 * time.Minute,
		Initramfs: vm.Initramfs{Init: graft, Busybox: target.Busybox},
	}
}

// TestExec boots the real kernel once per case and checks what a user of
// graft vm sees: output streams, exit status and files.
func TestExec(t *testing.T) {
	base := hostConfig(t)
	payload := filepath.Join(t.TempDir(), "payload.bin")
	if err := os.WriteFile(payload, []byte("graft payload\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		argv       []string
		files      []vm.File
		append     string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{
			name:       "cmdline",
			argv:       []string{"cat", "/proc/cmdline"},
			append:     "graft.marker=42",
			wantStdout: "console=ttyS0 panic=-1 rdinit=/init graft.marker=42\n",
		},
		{
			name:       "separate streams and exit status",
			argv:       []string{"sh", "-c", "echo out; echo err >&2; exit 3"},
			wantCode:   3,
			wantStdout: "out\n",
			wantStderr: "err\n",
		},
		{
			name:       "file copied in",
			argv:       []string{"cat", "/in/payload"},
			files:      []vm.File{{Host: payload, Guest: "/in/payload"}},
			wantStdout: "graft payload\n",
		},
		{
			name:       "command not found",
			argv:       []string{"no-such-command"},
			wantCode:   127,
			wantStderr: "graft vm: exec: \"no-such-command\": executable file not found in $PATH\n",
		},
		{
			name:     "killed by a signal",
			argv:     []string{"sh", "-c", "kill -TERM $$"},
			wantCode: 128 + 15,
		},
		{
			name:       "guest kernel is the target",
			argv:       []string{"sh", "-c", "test -d /sys/kernel/livepatch && test \"$GRAFT_VM\" = 1 && command -v graft"},
			wantStdout: "/bin/graft\n",
		},
		{
			name:       "binary output unchanged",
			argv:       []string{"printf", `a\nb\r\n\001\377`},
			wantStdout: "a\nb\r\n\001\377",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			var stdout, stderr bytes.Buffer
			cfg.Argv, cfg.Stdout, cfg.Stderr, cfg.Append = tc.argv, &stdout, &stderr, tc.append
			cfg.Initramfs.Files = tc.files
			code, err := vm.Exec(context.Background(), cfg)
			if err != nil {
				t.Fatalf("Exec: %v", err)
			}
			if code != tc.wantCode {
				t.Errorf("exit status = %d, want %d", code, tc.wantCode)
			}
			if stdout.String() != tc.wantStdout {
				t.Errorf("stdout = %q, want %q", stdout.String(), tc.wantStdout)
			}
			if stderr.String() != tc.wantStderr {
				t.Errorf("stderr = %q, want %q", stderr.String(), tc.wantStderr)
			}
		})
	}
}

func TestExecTimeout(t *testing.T) {
	cfg := hostConfig(t)
	cfg.Argv = []string{"sleep", "600"}
	cfg.Timeout = 15 * time.Second
	start := time.Now()
	_, err := vm.Exec(context.Background(), cfg)
	if !errors.Is(err, vm.ErrTimeout) {
		t.Fatalf("vm.Exec error = %v, want ErrTimeout", err)
	}
	var te *vm.TimeoutError
	if !errors.As(err, &te) || len(te.Console) == 0 {
		t.Fatalf("timeout error without console lines: %v", err)
	}
	if d := time.Since(start); d > time.Minute {
		t.Errorf("the VM was killed only after %v", d)
	}
}

// TestExecCancel checks that cancelling leaves no QEMU and no temporary
// files behind.
func TestExecCancel(t *testing.T) {
	cfg := hostConfig(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	cfg.Argv = []string{"sleep", "600"}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(4*time.Second, cancel)
	_, err := vm.Exec(ctx, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("vm.Exec error = %v, want context.Canceled", err)
	}
	left, _ := os.ReadDir(tmp)
	for _, e := range left {
		if strings.HasPrefix(e.Name(), "graft-vm-") {
			t.Errorf("temporary %s left behind", e.Name())
		}
	}
	if out, err := exec.Command("pgrep", "-f", "qemu-system-x86_64.*"+tmp).Output(); err == nil {
		t.Errorf("QEMU still running after cancel: %s", out)
	}
}

// TestExecGuestPanic checks that a guest that dies without reporting gives
// vm.ErrVM with the console lines that say why.
func TestExecGuestPanic(t *testing.T) {
	cfg := hostConfig(t)
	cfg.Argv = []string{"sh", "-c", "echo c > /proc/sysrq-trigger"}
	_, err := vm.Exec(context.Background(), cfg)
	if !errors.Is(err, vm.ErrVM) {
		t.Fatalf("vm.Exec error = %v, want ErrVM", err)
	}
	if !strings.Contains(err.Error(), "panicked: sysrq triggered crash") {
		t.Errorf("error does not show the panic from the console: %v", err)
	}
}

// TestExecModules loads a module of the target kernel with its dependencies.
func TestExecModules(t *testing.T) {
	cfg := hostConfig(t)
	t.Run("default kernel", func(t *testing.T) { execModules(t, cfg, target, false) })
	// Debian 13 ships its modules compressed: they go into the guest
	// decompressed.
	t.Run("trixie", func(t *testing.T) {
		tg, err := vm.PrepareTarget(context.Background(), "trixie", nil)
		if err != nil {
			t.Fatal(err)
		}
		c := cfg
		c.Image = tg.Image
		execModules(t, c, tg, true)
	})
	if _, _, err := vm.Modules(target.Kernel.ModulesDir, []string{"no_such_module"}); !errors.Is(err, vm.ErrUnknownModule) {
		t.Errorf("unknown module: error %v, want ErrUnknownModule", err)
	}
}

// execModules boots tg with vsock_loopback and its dependencies loaded by
// the guest init, and checks /proc/modules.
func execModules(t *testing.T, cfg vm.Config, tg *vm.Target, compressed bool) {
	files, order, err := vm.Modules(tg.Kernel.ModulesDir, []string{"vsock-loopback"})
	if err != nil {
		t.Fatal(err)
	}
	if len(order) < 2 || order[len(order)-1] != "/lib/modules/vsock_loopback.ko" {
		t.Fatalf("load order %q: want vsock_loopback last, after its dependencies", order)
	}
	if got := strings.HasSuffix(files[0].Host, ".ko.xz"); got != compressed {
		t.Fatalf("%s: compressed %v, want %v", files[0].Host, got, compressed)
	}
	var stdout bytes.Buffer
	cfg.Initramfs.Files, cfg.Modules = files, order
	cfg.Argv, cfg.Stdout = []string{"cut", "-d", " ", "-f", "1", "/proc/modules"}, &stdout
	if code, err := vm.Exec(context.Background(), cfg); err != nil || code != 0 {
		t.Fatalf("Exec: %d, %v", code, err)
	}
	for _, m := range order {
		name := strings.TrimSuffix(filepath.Base(m), ".ko")
		if !strings.Contains(stdout.String(), name+"\n") {
			t.Errorf("module %s not loaded; /proc/modules:\n%s", name, stdout.String())
		}
	}
}
