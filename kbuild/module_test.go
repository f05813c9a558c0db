package kbuild_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/graft-live/graft/internal/fixtures"
	"github.com/graft-live/graft/kbuild"
	"github.com/graft-live/graft/kernel"
	"github.com/graft-live/graft/kmod"
)

func modinfoOf(t *testing.T, ko string) map[string]string {
	t.Helper()
	f, err := kmod.Open(ko)
	if err != nil {
		t.Fatalf("%s: %v", ko, err)
	}
	defer f.Close()
	return f.Info
}

// TestBuildModules builds the kernel's own livepatch sample and a livepatch
// selftest module against the fetched headers.
func TestBuildModules(t *testing.T) {
	tr := fixtures.Kernel(t, kernel.Headers|kernel.Source)
	for _, src := range []string{"samples/livepatch/livepatch-sample.c", "lib/livepatch/test_klp_livepatch.c"} {
		t.Run(filepath.Base(src), func(t *testing.T) {
			dir := t.TempDir()
			b, err := os.ReadFile(filepath.Join(tr.SourceDir, src))
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimSuffix(filepath.Base(src), ".c")
			os.WriteFile(filepath.Join(dir, name+".c"), b, 0o644)
			os.WriteFile(filepath.Join(dir, "Kbuild"), []byte("obj-m += "+name+".o\n"), 0o644)
			kos, err := kbuild.BuildModules(context.Background(), kbuild.Host, tr.HeadersDir, dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(kos) != 1 || filepath.Base(kos[0]) != name+".ko" {
				t.Fatalf("built %q", kos)
			}
			info := modinfoOf(t, kos[0])
			if info["livepatch"] != "Y" {
				t.Errorf("modinfo livepatch = %q, want Y", info["livepatch"])
			}
			if !strings.HasPrefix(info["vermagic"], tr.Release+" ") {
				t.Errorf("vermagic %q is not for %s", info["vermagic"], tr.Release)
			}
		})
	}
}

func TestBuildModulesErrors(t *testing.T) {
	tr := fixtures.Kernel(t, kernel.Headers|kernel.Source)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "broken.c"), []byte("this is not C;\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "Kbuild"), []byte("obj-m += broken.o\n"), 0o644)
	_, err := kbuild.BuildModules(context.Background(), kbuild.Host, tr.HeadersDir, dir, nil)
	if err == nil || !strings.Contains(err.Error(), "broken.c") {
		t.Errorf("a compile error should name the file: %v", err)
	}
	_, err = kbuild.BuildModules(context.Background(), kbuild.Host, t.TempDir(), dir, nil)
	if err == nil || !strings.Contains(err.Error(), "not a prepared headers tree") {
		t.Errorf("a bad headers dir: %v", err)
	}
}

func TestCheckCompilerMismatch(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ".config"), []byte(`CONFIG_CC_VERSION_TEXT="gcc (Imaginary 1.0) 1.0"`+"\n"), 0o644)
	os.WriteFile(filepath.Join(dir, ".kernelvariables"), []byte("CC = $(CROSS_COMPILE)gcc\n"), 0o644)
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no gcc")
	}
	if err := kbuild.CheckCompiler(context.Background(), kbuild.Host, dir); !errors.Is(err, kbuild.ErrCompilerMismatch) {
		t.Errorf("CheckCompiler = %v, want ErrCompilerMismatch", err)
	}
}
