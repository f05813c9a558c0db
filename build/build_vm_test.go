package build_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/graft-live/graft/internal/fixtures"
	"github.com/graft-live/graft/internal/vmtest"
	"github.com/graft-live/graft/kernel"
	"github.com/graft-live/graft/kmod"
	"github.com/graft-live/graft/srcpatch"
	"github.com/graft-live/graft/vm"
)

// Guest paths.
const (
	guestDir   = "/graft-build/"
	guestCases = guestDir + "cases.json"
	allModule  = "livepatch-all"
)

// guestCase is what the guest needs of a test case.
type guestCase struct {
	Name   string `json:"name"`
	Module string `json:"module"` // the livepatch module name
	Check  string `json:"check"`
	Expect string `json:"expect"`
	// Target is a module of the kernel the patch changes, and
	// TargetFile its guest path.
	Target     string `json:"target,omitempty"`
	TargetFile string `json:"target_file,omitempty"`
}

// TestBuildVM builds every passing test patch on the host, each into its
// own module and all together into one, and in the guest applies each:
// what its check command prints must match only while the patch is
// applied. A patch of a loadable module is applied once before and once
// after the module is loaded.
func TestBuildVM(t *testing.T) {
	vmtest.Run(t, guestBuild, vmtest.WithFiles(hostBuild))
}

func hostBuild(t *testing.T) []vm.File {
	spec := target(t)
	pass, _ := cases(t)
	dir := t.TempDir()
	var gcs []guestCase
	var files []vm.File
	var all []string
	for _, c := range pass {
		name := "livepatch-" + c.Name
		ko, rep, err := buildPatches(t, spec, dir, name, c.Patch)
		if errors.Is(err, srcpatch.ErrDoesNotApply) && os.Getenv(fixtures.TestKernelEnv) != "" {
			// The patches are written for the default kernel; another
			// family's source may differ where they change it.
			t.Logf("%s: does not apply to %s: %v", c.Name, spec.Release, err)
			continue
		}
		if err != nil {
			t.Fatalf("build %s: %v", c.Name, err)
		}
		if len(rep.Functions) == 0 {
			t.Fatalf("build %s: the report names no replaced function", c.Name)
		}
		gc := guestCase{Name: c.Name, Module: kernel.ModuleName(name), Check: c.Check, Expect: c.Expect.String()}
		files = append(files, vm.File{Host: ko, Guest: guestDir + filepath.Base(ko)})
		if c.Module != "" {
			gc.Target, gc.TargetFile = c.Module, targetModule(t, spec, c.Module, dir)
			files = append(files, vm.File{Host: gc.TargetFile, Guest: guestDir + filepath.Base(gc.TargetFile)})
			gc.TargetFile = guestDir + filepath.Base(gc.TargetFile)
		}
		gcs = append(gcs, gc)
		all = append(all, c.Patch)
	}
	if len(gcs) < 5 {
		t.Fatalf("only %d of %d patches apply to %s", len(gcs), len(pass), spec.Release)
	}
	ko, rep, err := buildPatches(t, spec, dir, allModule, all...)
	if err != nil {
		t.Fatalf("build all patches into one module: %v", err)
	}
	t.Logf("%s replaces %d functions", allModule, len(rep.Functions))
	files = append(files, vm.File{Host: ko, Guest: guestDir + filepath.Base(ko)})
	return append(files, writeGuestCases(t, dir, gcs))
}

// targetModule writes a module of the target kernel into dir, uncompressed
// (busybox insmod loads only plain modules), and returns its path.
func targetModule(t *testing.T, spec kernel.Spec, name, dir string) string {
	t.Helper()
	c, err := kernel.OpenCache("")
	if err != nil {
		t.Fatal(err)
	}
	tg, err := c.Resolve(context.Background(), spec, kernel.Image, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := tg.ModuleFile(name)
	if err != nil {
		t.Fatal(err)
	}
	data, err := kmod.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, kernel.ModuleName(name)+".ko")
	if err := os.WriteFile(out, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}

// writeGuestCases writes the cases for the guest into dir and returns the
// file that takes them there.
func writeGuestCases(t *testing.T, dir string, gcs []guestCase) vm.File {
	t.Helper()
	b, err := json.Marshal(gcs)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "cases.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return vm.File{Host: p, Guest: guestCases}
}

// readGuestCases reads the cases in the guest.
func readGuestCases(t *testing.T) []guestCase {
	t.Helper()
	b, err := os.ReadFile(guestCases)
	if err != nil {
		t.Fatal(err)
	}
	var gcs []guestCase
	if err := json.Unmarshal(b, &gcs); err != nil {
		t.Fatal(err)
	}
	return gcs
}

func guestBuild(t *testing.T) {
	gcs := readGuestCases(t)
	for _, c := range gcs {
		t.Run(c.Name, func(t *testing.T) {
			if c.Target == "" {
				applyAndRevert(t, c.Module, []guestCase{c})
				return
			}
			// The patch first, then the module it changes...
			if loadedModule(t, c.Target) {
				t.Fatalf("%s is loaded before the test", c.Target)
			}
			sh(t, "graft apply -q "+guestDir+strings.ReplaceAll(c.Module, "_", "-")+".ko")
			sh(t, "insmod "+c.TargetFile)
			expect(t, c, true, "patch applied, then module loaded")
			sh(t, "graft revert -q "+c.Module)
			expect(t, c, false, "reverted")
			// ...and the module first, then the patch.
			applyAndRevert(t, c.Module, []guestCase{c})
		})
	}
	t.Run("all-in-one", func(t *testing.T) {
		applyAndRevert(t, strings.ReplaceAll(allModule, "-", "_"), gcs)
	})
}

// applyAndRevert applies a module and checks each case before, while it is
// applied, and after it was reverted.
func applyAndRevert(t *testing.T, module string, cs []guestCase) {
	t.Helper()
	for _, c := range cs {
		expect(t, c, false, "before")
	}
	sh(t, "graft apply -q "+guestDir+strings.ReplaceAll(module, "_", "-")+".ko")
	for _, c := range cs {
		expect(t, c, true, "applied")
	}
	sh(t, "graft revert -q "+module)
	for _, c := range cs {
		expect(t, c, false, "reverted")
	}
	if loadedModule(t, module) {
		t.Errorf("%s is still loaded after revert", module)
	}
}

// expect runs a case's check: its output must match the case's
// expression exactly when the patch is applied.
func expect(t *testing.T, c guestCase, applied bool, when string) {
	t.Helper()
	out, _ := run(c.Check)
	if regexp.MustCompile(c.Expect).MatchString(out) != applied {
		t.Errorf("%s, %s: %q printed %q; matching %q should be %v", c.Name, when, c.Check, out, c.Expect, applied)
	}
}

func sh(t *testing.T, cmd string) string {
	t.Helper()
	out, err := run(cmd)
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	return out
}

func run(cmd string) (string, error) {
	var out bytes.Buffer
	c := exec.Command("sh", "-c", cmd)
	c.Stdout, c.Stderr = &out, &out
	err := c.Run()
	return out.String(), err
}

func loadedModule(t *testing.T, name string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/modules")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(b, []byte("\n"+name+" ")) || bytes.HasPrefix(b, []byte(name+" "))
}
