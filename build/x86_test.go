package build

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/graft-live/graft/elfobj"
	"github.com/graft-live/graft/internal/testenv"
)

// TestPassesThreadFn finds the thread function of a kthread start in code
// as an IBT kernel has it (endbr64, padding before functions), and not in
// a function that passes the same address elsewhere.
func TestPassesThreadFn(t *testing.T) {
	testenv.NeedTool(t, "gcc")
	out := filepath.Join(t.TempDir(), "kthread.o")
	cmd := exec.Command("gcc", "-c", "-O2", "-ffunction-sections", "-mcmodel=kernel", "-fno-PIE",
		"-fcf-protection=branch", "-fpatchable-function-entry=16,16", "-o", out, filepath.Join("testdata", "x86", "kthread.c"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, b)
	}
	f, err := elfobj.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	worker := f.Symbol("worker")
	for name, want := range map[string]bool{"start": true, "not_a_start": false} {
		if got := passesThreadFn(f, f.Symbol(name), worker, kthreadStarters); got != want {
			t.Errorf("passesThreadFn(%s, worker) = %v, want %v", name, got, want)
		}
	}
}
