package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graft-live/graft/internal/testenv"
	"github.com/graft-live/graft/objdiff"
)

// compileFixture compiles an objdiff fixture file as unit.c, as kbuild
// would, and returns the object.
func compileFixture(t *testing.T, src string) string {
	t.Helper()
	testenv.NeedTool(t, "gcc")
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join("..", "..", "objdiff", "testdata", src))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "unit.c"), b, 0o644)
	cmd := exec.Command("gcc", append(append([]string{"-c", "-o", "unit.o"}, testenv.KernelCFLAGS...), "unit.c")...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	return filepath.Join(dir, "unit.o")
}

// TestDiffCommand runs graft diff as a user would: text, JSON, and the
// exit status of a change a livepatch cannot carry.
func TestDiffCommand(t *testing.T) {
	a, b := compileFixture(t, "body_change/orig.c"), compileFixture(t, "body_change/patched.c")
	out, errOut, code := graftCmd(t, nil, "diff", a, b)
	if code != 0 || !strings.HasPrefix(out, "changed     function answer: body changed") || errOut != "" {
		t.Errorf("text: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, _, code = graftCmd(t, nil, "diff", "--json", a, b)
	var res objdiff.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 {
		t.Fatalf("--json: exit %d, %v: %s", code, err, out)
	}
	if len(res.Changes) != 1 || res.Changes[0].Name != "answer" || res.Changes[0].Status != objdiff.Changed {
		t.Errorf("--json changes = %+v", res.Changes)
	}

	a, b = compileFixture(t, "data_size_change/orig.c"), compileFixture(t, "data_size_change/patched.c")
	_, errOut, code = graftCmd(t, nil, "diff", a, b)
	if code != exitRefused || !strings.Contains(errOut, "table: data object size changed from 16 to 20 bytes") {
		t.Errorf("size change: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = graftCmd(t, nil, "diff", a, "/etc/hostname")
	if code != exitRefused || !strings.Contains(errOut, "/etc/hostname") || !strings.Contains(errOut, "not an x86-64 ELF64 relocatable") {
		t.Errorf("not an object: exit %d, stderr %q", code, errOut)
	}
	if _, _, code = graftCmd(t, nil, "diff", a); code != exitUsage {
		t.Errorf("one argument: exit %d, want %d", code, exitUsage)
	}
}
