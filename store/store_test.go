package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/graft-live/graft/internal/fixtures"
	"github.com/graft-live/graft/internal/vmtest"
	"github.com/graft-live/graft/livepatch"
)

// realModules builds real livepatch modules (host only; skips without the
// tools, fails under CI).
func realModules(t *testing.T) fixtures.Modules {
	t.Helper()
	if vmtest.InGuest() {
		t.Skip("host-side test")
	}
	m, err := fixtures.Build(context.Background())
	if err != nil {
		vmtest.SkipOrFail(t, "cannot build fixture modules: "+err.Error())
	}
	return m
}

func TestInstallUninstall(t *testing.T) {
	mods := realModules(t)
	s := Open(t.TempDir())
	sample, err := livepatch.Inspect(mods.Path("livepatch-sample.ko"))
	if err != nil {
		t.Fatal(err)
	}
	rel := sample.Release()
	for _, ko := range []string{"livepatch-sample.ko", "test_klp_livepatch.ko", "test_klp_atomic_replace.ko"} {
		if _, err := s.Install(mods.Path(ko), ""); err != nil {
			t.Fatal(err)
		}
	}
	// Reinstalling keeps the place.
	if e, err := s.Install(mods.Path("test_klp_livepatch.ko"), rel); err != nil || e.Order != 2 {
		t.Fatalf("reinstall: %+v, %v", e, err)
	}
	if err := s.Uninstall("livepatch_sample", rel); err != nil {
		t.Fatal(err)
	}
	man, err := s.Manifest(rel)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i, e := range man.Patches {
		names = append(names, e.Name)
		if e.Order != i+1 {
			t.Errorf("%s has order %d, want %d", e.Name, e.Order, i+1)
		}
		if _, err := s.Verify(rel, e); err != nil {
			t.Errorf("verify %s: %v", e.Name, err)
		}
	}
	if len(names) != 2 || names[0] != "test_klp_livepatch" || names[1] != "test_klp_atomic_replace" {
		t.Errorf("installed %v", names)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, rel, "livepatch_sample.ko")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("uninstalled file still there: %v", err)
	}
	if err := s.Uninstall("livepatch_sample", rel); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("second uninstall: %v", err)
	}
	os.WriteFile(filepath.Join(s.Dir, rel, "test_klp_livepatch.ko"), []byte("x"), 0o644)
	if _, err := s.Verify(rel, man.Patches[0]); !errors.Is(err, ErrChecksum) {
		t.Errorf("tampered file: %v", err)
	}
}

func TestInstallRefuses(t *testing.T) {
	mods := realModules(t)
	s := Open(t.TempDir())
	if _, err := s.Install(mods.Path("livepatch-sample.ko"), "5.10.0-1-amd64"); !errors.Is(err, livepatch.ErrWrongKernel) {
		t.Errorf("--kernel of another release: %v", err)
	}
	if _, err := s.Install(mods.Path("test_klp_callbacks_busy.ko"), ""); !errors.Is(err, livepatch.ErrNotLivepatch) {
		t.Errorf("a plain module: %v", err)
	}
	entries, _ := os.ReadDir(s.Dir)
	for _, e := range entries {
		sub, _ := os.ReadDir(filepath.Join(s.Dir, e.Name()))
		if len(sub) > 0 {
			t.Errorf("a refused install left %s/%v", e.Name(), sub)
		}
	}
}

func TestBootDisabled(t *testing.T) {
	s := Open(t.TempDir())
	s.Cmdline = filepath.Join(t.TempDir(), "cmdline")
	os.WriteFile(s.Cmdline, []byte("root=/dev/sda1 graft.enable=0 quiet\n"), 0o644)
	proc := t.TempDir()
	os.MkdirAll(filepath.Join(proc, "sys", "kernel"), 0o755)
	os.WriteFile(filepath.Join(proc, "sys", "kernel", "osrelease"), []byte("6.1.0-56-amd64\n"), 0o644)
	res, err := s.Boot(context.Background(), &livepatch.System{Sysfs: t.TempDir(), Proc: proc}, livepatch.Options{})
	if err != nil || !res.Disabled || len(res.Applied) != 0 {
		t.Errorf("Boot = %+v, %v; want disabled", res, err)
	}
	os.WriteFile(s.Cmdline, []byte("root=/dev/sda1 graft.enable=00\n"), 0o644)
	res, err = s.Boot(context.Background(), &livepatch.System{Sysfs: t.TempDir(), Proc: proc}, livepatch.Options{})
	if err != nil || res.Disabled {
		t.Errorf("graft.enable=00 is not graft.enable=0: %+v, %v", res, err)
	}
}
