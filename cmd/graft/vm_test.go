package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/graft-live/graft/internal/testenv"
	"github.com/graft-live/graft/internal/vmtest"
)

// graftCmd runs the real graft binary, as a user would.
func graftCmd(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	bin, err := vmtest.GraftBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

func needQEMU(t *testing.T) {
	t.Helper()
	if vmtest.InGuest() {
		t.Skip("host-side test")
	}
	if _, err := exec.LookPath("qemu-system-x86_64"); err != nil {
		testenv.SkipOrFail(t, "qemu-system-x86_64 is not installed")
	}
}

// TestVMCommand checks the acceptance criteria of graft vm with the real
// binary and a real Debian kernel.
func TestVMCommand(t *testing.T) {
	needQEMU(t)
	ko := filepath.Join(t.TempDir(), "x.ko")
	if err := os.WriteFile(ko, []byte("not really a module"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("cmdline is the only output", func(t *testing.T) {
		out, errOut, code := graftCmd(t, nil, "vm", "-q", "--", "cat", "/proc/cmdline")
		if code != 0 {
			t.Fatalf("exit %d, stderr %q", code, errOut)
		}
		if lines := strings.Count(out, "\n"); lines != 1 || !strings.Contains(out, "console=ttyS0") {
			t.Fatalf("stdout = %q, want exactly the guest's command line", out)
		}
	})
	t.Run("exit status passes through", func(t *testing.T) {
		_, errOut, code := graftCmd(t, nil, "vm", "-q", "--", "sh", "-c", "exit 3")
		if code != 3 {
			t.Fatalf("exit %d, want 3 (stderr %q)", code, errOut)
		}
		if errOut != "" {
			t.Errorf("stderr = %q, want nothing", errOut)
		}
	})
	t.Run("file is copied in", func(t *testing.T) {
		out, errOut, code := graftCmd(t, nil, "vm", "-q", "--file", ko+":/x.ko", "--", "ls", "-l", "/x.ko")
		if code != 0 || !strings.Contains(out, "19 ") || !strings.HasSuffix(strings.TrimSpace(out), "/x.ko") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})
	t.Run("graft runs in the guest", func(t *testing.T) {
		out, _, code := graftCmd(t, nil, "vm", "-q", "--", "graft", "version")
		if code != 0 || !strings.HasPrefix(out, "graft ") {
			t.Fatalf("exit %d, stdout %q", code, out)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		_, errOut, code := graftCmd(t, nil, "vm", "-q", "--timeout", "15s", "--", "sleep", "600")
		if code != exitTimeout {
			t.Fatalf("exit %d, want %d (stderr %q)", code, exitTimeout, errOut)
		}
		if !strings.Contains(errOut, "last console lines") {
			t.Errorf("stderr does not show the console: %q", errOut)
		}
	})
	t.Run("script on stdin", func(t *testing.T) {
		bin, err := vmtest.GraftBinary()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "vm", "-q")
		cmd.Stdin = strings.NewReader("echo marker-$((6*7)); exit 7\n")
		out, err := cmd.Output()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 7 {
			t.Fatalf("exit: %v, want status 7 from the script; output %q", err, out)
		}
		if string(out) != "marker-42\n" {
			t.Errorf("stdout = %q, want the script's output only", out)
		}
	})
	t.Run("ctrl-c stops the VM", func(t *testing.T) {
		bin, err := vmtest.GraftBinary()
		if err != nil {
			t.Fatal(err)
		}
		tmp := t.TempDir()
		cmd := exec.Command(bin, "vm", "-q", "--", "sleep", "600")
		cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(4 * time.Second)
		cmd.Process.Signal(syscall.SIGINT)
		err = cmd.Wait()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitInterrupted {
			t.Fatalf("graft vm after Ctrl-C: %v, want exit %d", err, exitInterrupted)
		}
		if left, _ := os.ReadDir(tmp); len(left) != 0 {
			t.Errorf("temporary files left: %v", left)
		}
		if out, err := exec.Command("pgrep", "-f", "qemu-system-x86_64.*"+tmp).Output(); err == nil {
			t.Errorf("QEMU still running: %s", out)
		}
	})
	t.Run("dmesg kept", func(t *testing.T) {
		dmesg := filepath.Join(t.TempDir(), "dmesg.txt")
		_, errOut, code := graftCmd(t, nil, "vm", "-q", "--dmesg", dmesg, "--", "true")
		if code != 0 {
			t.Fatalf("exit %d (stderr %q)", code, errOut)
		}
		b, _ := os.ReadFile(dmesg)
		if !bytes.Contains(b, []byte("Linux version")) {
			t.Errorf("dmesg file has no kernel log (%d bytes)", len(b))
		}
	})
}

// TestVMBadInput checks the errors a user gets for bad input: a clear
// message, the documented exit code, and no VM started.
func TestVMBadInput(t *testing.T) {
	if vmtest.InGuest() {
		t.Skip("host-side test")
	}
	tests := []struct {
		name     string
		env      []string
		args     []string
		wantCode int
		wantMsg  []string
	}{
		{
			name:     "missing file",
			args:     []string{"vm", "--file", "/nonexistent/x.ko:/x.ko", "--", "true"},
			wantCode: exitNotFound,
			wantMsg:  []string{"/nonexistent/x.ko"},
		},
		{
			name:     "relative guest path",
			args:     []string{"vm", "--file", "x.ko:x.ko", "--", "true"},
			wantCode: exitUsage,
			wantMsg:  []string{"absolute"},
		},
		{
			name:     "bad memory size",
			args:     []string{"vm", "--mem", "lots", "--", "true"},
			wantCode: exitUsage,
			wantMsg:  []string{"--mem"},
		},
		{
			name:     "unknown kernel release",
			args:     []string{"vm", "-q", "--kernel", "9.9.9-99-amd64", "--", "true"},
			wantCode: exitNotFound,
			wantMsg:  []string{"linux-image-9.9.9-99-amd64", "graft kernel list"},
		},
		{
			name:     "no qemu",
			env:      []string{"PATH=/nonexistent"},
			args:     []string{"vm", "-q", "--kernel-image", "/etc/hostname", "--", "true"},
			wantCode: exitEnvironment,
			wantMsg:  []string{"apt-get install qemu-system-x86"},
		},
		{
			name:     "unknown flag",
			args:     []string{"vm", "--no-such-flag"},
			wantCode: exitUsage,
			wantMsg:  []string{"no-such-flag"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := graftCmd(t, tc.env, tc.args...)
			if code != tc.wantCode {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.wantCode, errOut)
			}
			for _, m := range tc.wantMsg {
				if !strings.Contains(errOut, m) {
					t.Errorf("stderr %q does not mention %q", errOut, m)
				}
			}
		})
	}
}
