package build_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graft-live/graft/internal/vmtest"
	"github.com/graft-live/graft/kernel"
	"github.com/graft-live/graft/vm"
)

// families are the Debian releases whose default kernels TestFamilies
// covers besides the test kernel (bookworm's, which TestBuildVM covers
// patch by patch): the host's compiler with IBT (bookworm-backports), and
// kernels built by another release's compiler, which graft runs in a root
// file system of that release (trixie, sid).
var families = []string{"bookworm-backports", "trixie", "sid"}

// familyPatches are built into one module for each family: a function of
// vmlinux that reaches an unexported symbol, and one of a loadable module.
// The module's source differs between the families around the line
// module.patch changes, so its diff is made from each target's own source
// (familyModuleEdit).
var familyPatches = []string{"../examples/cmdline.patch", "testdata/module.patch"}

// familyModuleEdit is the change of module.patch as a string replacement.
var familyModuleEdit = struct{ file, old, new string }{"fs/binfmt_misc.c", `"enabled\n" :`, `"enabled (graft)\n" :`}

// TestFamilies builds, applies and reverts one livepatch on the current
// default kernel of each Debian release graft targets, each in a VM of
// that kernel. The release is resolved when the test runs (sid keeps only
// its newest kernel), once, so that the build and the VM agree.
func TestFamilies(t *testing.T) {
	for _, suite := range families {
		t.Run(suite, func(t *testing.T) {
			var release string
			if !vmtest.InGuest() {
				if testing.Short() {
					t.Skip("builds kernel objects")
				}
				c, err := kernel.OpenCache("")
				if err != nil {
					t.Fatal(err)
				}
				tg, err := c.Resolve(context.Background(), kernel.Spec{Release: suite}, 0, nil)
				if err != nil {
					t.Fatal(err)
				}
				release = tg.Release + "=" + tg.Version
				t.Logf("%s: %s", suite, tg)
			}
			vmtest.Run(t, guestFamily, vmtest.WithKernel(release), vmtest.WithFiles(func(t *testing.T) []vm.File {
				return hostFamily(t, kernel.Spec{Release: release})
			}))
		})
	}
}

func hostFamily(t *testing.T, spec kernel.Spec) []vm.File {
	dir := t.TempDir()
	var gcs []guestCase
	var files []vm.File
	for _, p := range familyPatches {
		c := readCase(t, p)
		gc := guestCase{Name: c.Name, Module: "livepatch_family", Check: c.Check, Expect: c.Expect.String(), Target: c.Module}
		if c.Module != "" {
			gc.TargetFile = guestDir + kernel.ModuleName(c.Module) + ".ko"
			files = append(files, vm.File{Host: targetModule(t, spec, c.Module, dir), Guest: gc.TargetFile})
		}
		gcs = append(gcs, gc)
	}
	cmdline, err := filepath.Abs(familyPatches[0])
	if err != nil {
		t.Fatal(err)
	}
	module := sourceDiff(t, spec, dir, familyModuleEdit.file, familyModuleEdit.old, familyModuleEdit.new)
	ko, rep, err := buildPatches(t, spec, dir, "livepatch-family", cmdline, module)
	if err != nil {
		t.Fatalf("build for %s: %v", spec, err)
	}
	if len(rep.Functions) < len(familyPatches) {
		t.Fatalf("the module replaces %d functions: %+v", len(rep.Functions), rep.Functions)
	}
	return append(files, vm.File{Host: ko, Guest: guestDir + "livepatch-family.ko"}, writeGuestCases(t, dir, gcs))
}

// sourceDiff makes a unified diff (diff -u) of one file of the target's
// source with old replaced by new, exactly once, and returns its path.
func sourceDiff(t *testing.T, spec kernel.Spec, dir, file, old, new string) string {
	t.Helper()
	c, err := kernel.OpenCache("")
	if err != nil {
		t.Fatal(err)
	}
	tg, err := c.Resolve(context.Background(), spec, kernel.Source, nil)
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile(filepath.Join(tg.SourceDir, file))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(src), old); n != 1 {
		t.Fatalf("%s of %s has %q %d times", file, tg, old, n)
	}
	for _, side := range []struct{ dir, text string }{{"a", string(src)}, {"b", strings.Replace(string(src), old, new, 1)}} {
		p := filepath.Join(dir, side.dir, file)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(side.text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("diff", "-u", filepath.Join("a", file), filepath.Join("b", file))
	cmd.Dir = dir
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("diff -u: %v", err)
	}
	p := filepath.Join(dir, "module.patch")
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// guestFamily loads the patched module's target, then applies and reverts
// the livepatch, checking every case before, during and after.
func guestFamily(t *testing.T) {
	gcs := readGuestCases(t)
	for _, c := range gcs {
		if c.TargetFile != "" {
			sh(t, "insmod "+c.TargetFile)
		}
	}
	applyAndRevert(t, "livepatch_family", gcs)
}
