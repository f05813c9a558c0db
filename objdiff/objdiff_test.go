package objdiff

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/graft-live/graft/elfobj"
	"github.com/graft-live/graft/internal/testenv"
)

// compileAs compiles src as dir/unit.c from inside dir, so that both
// versions of a fixture see the same __FILE__, as in a kernel build.
func compileAs(t *testing.T, src string, extra ...string) string {
	t.Helper()
	testenv.NeedTool(t, "gcc")
	dir := t.TempDir()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "unit.c"), b, 0o644)
	args := append(append([]string{"-c", "-o", "unit.o"}, testenv.KernelCFLAGS...), extra...)
	cmd := exec.Command("gcc", append(args, "unit.c")...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc %s: %v\n%s", src, err, out)
	}
	return filepath.Join(dir, "unit.o")
}

type expectation struct {
	Changes []struct {
		Name   string `json:"name"`
		Kind   Kind   `json:"kind"`
		Status Status `json:"status"`
	} `json:"changes"`
	Error bool `json:"error"`
}

// ibtFlags compile as an IBT kernel does (Debian's 6.12 and 7.x): endbr64
// at each function's entry, 16 bytes of padding before it.
var ibtFlags = []string{"-fcf-protection=branch", "-fpatchable-function-entry=16,16"}

// TestFixtures compares each fixture pair (testdata/CASE/orig.c and
// patched.c) and checks the exact changed set written in expect.json,
// compiled as for a kernel without IBT and as for one with it.
func TestFixtures(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*/expect.json")
	if err != nil || len(dirs) < 20 {
		t.Fatalf("want at least 20 fixtures, found %d (%v)", len(dirs), err)
	}
	for _, e := range dirs {
		t.Run(filepath.Base(filepath.Dir(e)), func(t *testing.T) { checkFixture(t, e) })
		t.Run(filepath.Base(filepath.Dir(e))+"/ibt", func(t *testing.T) { checkFixture(t, e, ibtFlags...) })
	}
}

// checkFixture compiles one fixture pair with flags (and those its flags
// file names) and checks its changed set against expect.json.
func checkFixture(t *testing.T, expectFile string, flags ...string) {
	t.Parallel()
	dir := filepath.Dir(expectFile)
	if extra, err := os.ReadFile(filepath.Join(dir, "flags")); err == nil {
		flags = append(strings.Fields(string(extra)), flags...)
	}
	var want expectation
	b, err := os.ReadFile(expectFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatalf("%s: %v", expectFile, err)
	}
	res, err := CompareFiles(compileAs(t, filepath.Join(dir, "orig.c"), flags...), compileAs(t, filepath.Join(dir, "patched.c"), flags...))
	if err != nil {
		t.Fatal(err)
	}
	type triple struct {
		Name   string
		Kind   Kind
		Status Status
	}
	var got, exp []triple
	for _, c := range res.Changes {
		got = append(got, triple{c.Name, c.Kind, c.Status})
	}
	for _, c := range want.Changes {
		exp = append(exp, triple{c.Name, c.Kind, c.Status})
	}
	if !reflect.DeepEqual(got, exp) {
		t.Errorf("changes:\n got %v\nwant %v\nreasons: %+v", got, exp, res.Changes)
	}
	if (res.Err() != nil) != want.Error {
		t.Errorf("error = %v, want error %v", res.Err(), want.Error)
	}
	for _, c := range res.Changes {
		if len(c.Reasons) == 0 {
			t.Errorf("%s has no reason", c.Name)
		}
	}
}

// TestSelfCompare compares each fixture object with itself: nothing may
// differ.
func TestSelfCompare(t *testing.T) {
	srcs, _ := filepath.Glob("testdata/*/patched.c")
	for _, src := range srcs {
		o := compileAs(t, src)
		res, err := CompareFiles(o, o)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Changes) != 0 || len(res.Errors) != 0 {
			t.Errorf("%s against itself: %+v", src, res)
		}
	}
}

// TestInlineReason checks that a change in a static inline callee is
// explained in its callers.
func TestInlineReason(t *testing.T) {
	res, err := CompareFiles(compileAs(t, "testdata/inline_callee_change/orig.c"), compileAs(t, "testdata/inline_callee_change/patched.c"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range res.Changes {
		found := false
		for _, r := range c.Reasons {
			found = found || r == "inlines scale"
		}
		if !found {
			t.Errorf("%s: reasons %q do not name the inlined callee", c.Name, c.Reasons)
		}
	}
}

// TestCompareLeavesInputs compares two objects with debug information:
// both must be exactly as they were (Compare reads them; it used to write
// one out to read its DWARF).
func TestCompareLeavesInputs(t *testing.T) {
	a, err := elfobj.Open(compileAs(t, "testdata/body_change/orig.c"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := elfobj.Open(compileAs(t, "testdata/body_change/patched.c"))
	if err != nil {
		t.Fatal(err)
	}
	bytesOf := func(f *elfobj.File) []byte {
		var buf bytes.Buffer
		if err := f.Write(&buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	beforeA, beforeB := bytesOf(a), bytesOf(b)
	symsA := append([]*elfobj.Symbol(nil), a.Symbols...)
	res := Compare(a, b)
	if len(res.Changes) == 0 {
		t.Fatal("no changes found")
	}
	if !bytes.Equal(bytesOf(a), beforeA) || !bytes.Equal(bytesOf(b), beforeB) || !reflect.DeepEqual(symsA, a.Symbols) {
		t.Error("Compare changed its arguments")
	}
}
