package objdiff

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

// kernelFlags are the code generation flags of a kernel object.
var kernelFlags = []string{"-O2", "-pg", "-mfentry", "-mrecord-mcount", "-ffunction-sections", "-fdata-sections",
	"-mcmodel=kernel", "-fno-PIE", "-mno-red-zone", "-fno-asynchronous-unwind-tables", "-fno-common", "-g"}

// compileAs compiles src as dir/unit.c from inside dir, so that both
// versions of a fixture see the same __FILE__, as in a kernel build.
func compileAs(t *testing.T, src string) string {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true, but gcc is missing")
		}
		t.Skip("gcc is missing")
	}
	dir := t.TempDir()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "unit.c"), b, 0o644)
	cmd := exec.Command("gcc", append(append([]string{"-c", "-o", "unit.o"}, kernelFlags...), "unit.c")...)
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

// TestFixtures compares each fixture pair (testdata/CASE/orig.c and
// patched.c) and checks the exact changed set written in expect.json.
func TestFixtures(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*/expect.json")
	if err != nil || len(dirs) < 20 {
		t.Fatalf("want at least 20 fixtures, found %d (%v)", len(dirs), err)
	}
	for _, e := range dirs {
		dir := filepath.Dir(e)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			var want expectation
			b, err := os.ReadFile(e)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatalf("%s: %v", e, err)
			}
			res, err := CompareFiles(compileAs(t, filepath.Join(dir, "orig.c")), compileAs(t, filepath.Join(dir, "patched.c")))
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
		})
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
