// Package testmod makes tiny kernel module files for tests: relocatable
// objects with a .modinfo section, compiled by the real gcc, which the
// module readers accept without a kernel build.
package testmod

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graft-live/graft/internal/testenv"
)

// Module describes a module to make.
type Module struct {
	Name     string
	Release  string // vermagic's release
	Patch    bool   // livepatch=Y
	Depends  []string
	Extra    []string // more key=value entries
	FileName string   // default NAME.ko
	Source   string   // more C code
}

// Make compiles m into dir and returns the file. Without gcc the test is
// skipped, except under CI=true, where it fails.
func Make(t testing.TB, dir string, m Module) string {
	t.Helper()
	testenv.NeedTool(t, "gcc")
	entries := []string{"name=" + m.Name, "vermagic=" + m.Release + " SMP preempt mod_unload modversions ", "depends=" + strings.Join(m.Depends, ",")}
	if m.Patch {
		entries = append(entries, "livepatch=Y")
	}
	entries = append(entries, m.Extra...)
	var c strings.Builder
	c.WriteString("int graft_test_function(void) { return 1; }\n")
	c.WriteString(m.Source)
	for i, e := range entries {
		fmt.Fprintf(&c, "static const char graft_modinfo%d[] __attribute__((section(\".modinfo\"), used, aligned(1))) = %q;\n", i, e)
	}
	src := filepath.Join(dir, m.Name+".c")
	if err := os.WriteFile(src, []byte(c.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	name := m.FileName
	if name == "" {
		name = m.Name + ".ko"
	}
	out := filepath.Join(dir, name)
	if b, err := exec.Command("gcc", "-c", "-O2", "-o", out, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, b)
	}
	return out
}
