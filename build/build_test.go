package build_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graft-live/graft/build"
	"github.com/graft-live/graft/internal/fixtures"
	"github.com/graft-live/graft/internal/vmtest"
	"github.com/graft-live/graft/kernel"
	"github.com/graft-live/graft/srcpatch"
)

// target is the test kernel, fetched with what builds need.
func target(t *testing.T) kernel.Spec {
	t.Helper()
	if vmtest.InGuest() {
		t.Skip("host-side test")
	}
	if testing.Short() {
		t.Skip("builds kernel objects")
	}
	tree := fixtures.Kernel(t, kernel.Image|kernel.Headers|kernel.Source)
	return kernel.Spec{Release: tree.Release + "=" + tree.Version}
}

// buildPatches builds patches into dir and returns the module's path.
func buildPatches(t *testing.T, spec kernel.Spec, dir, name string, patches ...string) (string, *build.Report, error) {
	t.Helper()
	out := filepath.Join(dir, name+".ko")
	rep, err := build.Build(context.Background(), build.Options{Patches: patches, Kernel: spec, Output: out, Name: name})
	return out, rep, err
}

// TestRefused builds every NAME-FAIL.patch: each must be refused with its
// finding, and leave no module behind.
func TestRefused(t *testing.T) {
	spec := target(t)
	_, fail := cases(t)
	for _, c := range fail {
		t.Run(c.Name, func(t *testing.T) {
			dir := t.TempDir()
			out, rep, err := buildPatches(t, spec, dir, "livepatch-fail", c.Patch)
			skipElsewhere(t, c, spec, err)
			var refused *build.RefusedError
			if !errors.As(err, &refused) || !errors.Is(err, build.ErrRefused) {
				t.Fatalf("build = %v, want a refusal with finding %s", err, c.Finding)
			}
			ids := map[string]bool{}
			for _, f := range refused.Findings {
				ids[f.ID] = true
				if f.Message == "" || f.Where == "" {
					t.Errorf("finding without message or location: %+v", f)
				}
			}
			if !ids[c.Finding] {
				t.Errorf("findings %+v, want %s among them", refused.Findings, c.Finding)
			}
			if rep == nil || len(rep.Findings) == 0 {
				t.Errorf("the report does not carry the findings: %+v", rep)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("a refused build left %s", out)
			}
		})
	}
}

// TestAllowFinding builds a refused patch with --allow for its finding:
// the module is built and the report says what was allowed.
func TestAllowFinding(t *testing.T) {
	spec := target(t)
	out := filepath.Join(t.TempDir(), "allowed.ko")
	rep, err := build.Build(context.Background(), build.Options{
		Patches: []string{filepath.Join("testdata", "data-FAIL.patch"), filepath.Join("..", "examples", "cmdline.patch")},
		Kernel:  spec, Output: out, Allow: []string{"data-changed"},
	})
	skipElsewhere(t, testCase{Name: "data-FAIL"}, spec, err)
	if err != nil {
		t.Fatalf("build with --allow data-changed: %v", err)
	}
	allowed := false
	for _, f := range rep.Findings {
		allowed = allowed || f.ID == "data-changed" && f.Severity == build.SeverityWarning && strings.Contains(f.Message, "allowed")
	}
	if !allowed {
		t.Errorf("the report does not record the allowed finding: %+v", rep.Findings)
	}
	if _, err := os.Stat(out); err != nil {
		t.Errorf("no module: %v", err)
	}
}

// TestBadInput checks what a user sees for patches that are wrong.
func TestBadInput(t *testing.T) {
	spec := target(t)
	tests := []struct {
		name  string
		patch string
		check func(t *testing.T, err error, rep *build.Report)
	}{{
		name:  "hunk does not apply",
		patch: "--- a/fs/proc/cmdline.c\n+++ b/fs/proc/cmdline.c\n@@ -8,3 +8,3 @@\n {\n-\tseq_puts(m, no_such_thing);\n+\tseq_puts(m, \"x\");\n \tseq_putc(m, '\\n');\n",
		check: func(t *testing.T, err error, _ *build.Report) {
			var he *srcpatch.HunkError
			if !errors.As(err, &he) || he.File != "fs/proc/cmdline.c" || he.Hunk != 1 || !errors.Is(err, srcpatch.ErrDoesNotApply) {
				t.Errorf("err = %v, want a hunk error naming fs/proc/cmdline.c hunk #1", err)
			}
		},
	}, {
		name:  "comment only",
		patch: "--- a/fs/proc/cmdline.c\n+++ b/fs/proc/cmdline.c\n@@ -6,6 +6,7 @@\n \n static int cmdline_proc_show(struct seq_file *m, void *v)\n {\n+\t/* a comment changes no code */\n \tseq_puts(m, saved_command_line);\n \tseq_putc(m, '\\n');\n \treturn 0;\n",
		check: func(t *testing.T, err error, _ *build.Report) {
			if !errors.Is(err, build.ErrNoChanges) {
				t.Errorf("err = %v, want ErrNoChanges", err)
			}
		},
	}, {
		name:  "compile error",
		patch: "--- a/fs/proc/cmdline.c\n+++ b/fs/proc/cmdline.c\n@@ -7,6 +7,6 @@\n static int cmdline_proc_show(struct seq_file *m, void *v)\n {\n-\tseq_puts(m, saved_command_line);\n+\tseq_puts(m, saved_command_line)\n \tseq_putc(m, '\\n');\n \treturn 0;\n }\n",
		check: func(t *testing.T, err error, _ *build.Report) {
			if err == nil || !strings.Contains(err.Error(), "fs/proc/cmdline.c:") || !strings.Contains(err.Error(), "error:") {
				t.Errorf("err = %v, want the compiler's error naming fs/proc/cmdline.c", err)
			}
		},
	}, {
		name: "offset hunk",
		// The hunk says line 100; the code is at line 9.
		patch: "--- a/fs/proc/cmdline.c\n+++ b/fs/proc/cmdline.c\n@@ -100,3 +100,3 @@\n {\n-\tseq_puts(m, saved_command_line);\n+\tseq_printf(m, \"%s graft\", saved_command_line);\n \tseq_putc(m, '\\n');\n",
		check: func(t *testing.T, err error, rep *build.Report) {
			if err != nil {
				t.Fatalf("a hunk at another line must apply: %v", err)
			}
			noted := false
			for _, n := range rep.Notes {
				noted = noted || strings.Contains(n, "offset")
			}
			if !noted || len(rep.Functions) != 1 || rep.Functions[0].Name != "cmdline_proc_show" {
				t.Errorf("report: functions %+v, notes %q", rep.Functions, rep.Notes)
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "x.patch")
			if err := os.WriteFile(p, []byte(tc.patch), 0o644); err != nil {
				t.Fatal(err)
			}
			out, rep, err := buildPatches(t, spec, dir, "livepatch-x", p)
			tc.check(t, err, rep)
			if err != nil {
				if _, serr := os.Stat(out); !os.IsNotExist(serr) {
					t.Errorf("a failed build left %s", out)
				}
			}
		})
	}
}

// TestCheck runs graft check's pipeline: each fixture of testdata/check
// raises its finding, every -FAIL patch is refused with the finding build
// refuses it with, and every passing patch checks without errors.
func TestCheck(t *testing.T) {
	spec := target(t)
	pass, fail := cases(t)
	fixtures, _ := filepath.Glob(filepath.Join("testdata", "check", "*.patch"))
	if len(fixtures) == 0 {
		t.Fatal("no check fixtures")
	}
	check := func(t *testing.T, patch string) (*build.Report, error) {
		t.Helper()
		return build.Build(context.Background(), build.Options{Patches: []string{patch}, Kernel: spec, CheckOnly: true})
	}
	for _, f := range fixtures {
		c := readCase(t, f)
		t.Run("raises/"+c.Name, func(t *testing.T) {
			rep, err := check(t, c.Patch)
			skipElsewhere(t, c, spec, err)
			if c.Finding == "none" {
				// A case that must check clean.
				if err != nil {
					t.Errorf("check: %v", err)
				}
				return
			}
			if rep == nil || !hasFinding(rep, c.Finding) {
				t.Errorf("want finding %s, got %+v", c.Finding, rep)
			}
		})
	}
	for _, c := range fail {
		t.Run("refuses/"+c.Name, func(t *testing.T) {
			rep, err := check(t, c.Patch)
			skipElsewhere(t, c, spec, err)
			if !errors.Is(err, build.ErrRefused) || rep == nil || !hasFinding(rep, c.Finding) {
				t.Errorf("check = %v, want a refusal with %s", err, c.Finding)
			}
		})
	}
	for _, c := range pass {
		t.Run("clean/"+c.Name, func(t *testing.T) {
			rep, err := check(t, c.Patch)
			skipElsewhere(t, c, spec, err)
			if err != nil {
				t.Fatalf("check: %v", err)
			}
			for _, f := range rep.Findings {
				if f.Severity == build.SeverityError {
					t.Errorf("finding %+v", f)
				}
			}
			if len(rep.Functions) == 0 {
				t.Error("check names no function the patch replaces")
			}
		})
	}
}

func hasFinding(rep *build.Report, id string) bool {
	for _, f := range rep.Findings {
		if f.ID == id {
			return true
		}
	}
	return false
}
