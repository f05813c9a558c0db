package build_test

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/graft-live/graft/distro/debian"
	"github.com/graft-live/graft/internal/fixtures"
	"github.com/graft-live/graft/kernel"
	"github.com/graft-live/graft/srcpatch"
)

// testCase is one patch of testdata (or examples): a patch that must build
// and change what Check prints so that it matches Expect, or, for
// NAME-FAIL.patch, one that must be refused with the finding Finding.
type testCase struct {
	Name  string
	Patch string
	// Check is a shell command run in the guest; Expect is a regular
	// expression that its output matches only while the patch is applied.
	Check  string
	Expect *regexp.Regexp
	// Module is a module of the target the patch changes; the test loads
	// it in the guest before and after the patch.
	Module string
	// Finding is the id of the finding a -FAIL patch is refused with.
	Finding string
	// Series is the kernel series ("6.1") whose code the case's
	// expectation is about; on other series it is skipped.
	Series string
}

// readCase reads one test patch: the text before the diff holds
// "Key: value" lines.
func readCase(t *testing.T, f string) testCase {
	t.Helper()
	abs, err := filepath.Abs(f)
	if err != nil {
		t.Fatal(err)
	}
	c := testCase{Name: strings.TrimSuffix(filepath.Base(f), ".patch"), Patch: abs}
	fh, err := os.Open(f)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "--- ") || strings.HasPrefix(line, "diff ") {
			break
		}
		k, v, ok := strings.Cut(line, ": ")
		switch {
		case !ok:
		case k == "Check":
			c.Check = v
		case k == "Expect":
			re, err := regexp.Compile("(?m)" + v)
			if err != nil {
				t.Fatalf("%s: Expect: %v", f, err)
			}
			c.Expect = re
		case k == "Module":
			c.Module = v
		case k == "Finding":
			c.Finding = v
		case k == "Series":
			c.Series = v
		}
	}
	return c
}

// cases reads the test patches of testdata and examples.
func cases(t *testing.T) (pass, fail []testCase) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("testdata", "*.patch"))
	examples, _ := filepath.Glob(filepath.Join("..", "examples", "*.patch"))
	files = append(files, examples...)
	sort.Strings(files)
	if len(files) == 0 {
		t.Fatal("no test patches")
	}
	for _, f := range files {
		c := readCase(t, f)
		switch {
		case strings.HasSuffix(c.Name, "-FAIL"):
			if c.Finding == "" {
				t.Fatalf("%s: a -FAIL patch needs a Finding: line", f)
			}
			fail = append(fail, c)
		case c.Check == "" || c.Expect == nil:
			t.Fatalf("%s: a patch needs Check: and Expect: lines", f)
		default:
			pass = append(pass, c)
		}
	}
	return pass, fail
}

// skipElsewhere skips a case on a kernel its patch was not written for:
// with another test kernel ($GRAFT_TEST_KERNEL), a patch of the default
// kernel's source may not apply, and a case of one series may not hold.
func skipElsewhere(t *testing.T, c testCase, spec kernel.Spec, err error) {
	t.Helper()
	if os.Getenv(fixtures.TestKernelEnv) == "" {
		return
	}
	if errors.Is(err, srcpatch.ErrDoesNotApply) {
		t.Skipf("%s does not apply to %s: %v", c.Name, spec, err)
	}
	rel, _, _ := strings.Cut(spec.Release, "=")
	if series, serr := debian.SourceSeries(rel); c.Series != "" && serr == nil && series != c.Series {
		t.Skipf("%s is about %s code, the test kernel is %s", c.Name, c.Series, rel)
	}
}
