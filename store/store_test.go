package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/graft-live/graft/internal/testmod"
	"github.com/graft-live/graft/kmod"
	"github.com/graft-live/graft/livepatch"
)

const release = "6.1.0-56-amd64"

// modules makes tiny livepatch modules (and one plain module) for tests.
func modules(t *testing.T, names ...string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	out := map[string]string{}
	for _, n := range names {
		out[n] = testmod.Make(t, dir, testmod.Module{Name: n, Release: release, Patch: n != "plain"})
	}
	return out
}

func TestInstallUninstall(t *testing.T) {
	mods := modules(t, "lp_a", "lp_b", "lp_c")
	s := Open(t.TempDir())
	for _, n := range []string{"lp_a", "lp_b", "lp_c"} {
		if _, err := s.Install(mods[n], ""); err != nil {
			t.Fatal(err)
		}
	}
	// Reinstalling keeps the place.
	if e, err := s.Install(mods["lp_b"], release); err != nil || e.Order != 2 {
		t.Fatalf("reinstall: %+v, %v", e, err)
	}
	if err := s.Uninstall("lp_a", release); err != nil {
		t.Fatal(err)
	}
	man, err := s.Manifest(release)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i, e := range man.Patches {
		names = append(names, e.Name)
		if e.Order != i+1 {
			t.Errorf("%s has order %d, want %d", e.Name, e.Order, i+1)
		}
		f, err := s.Open(release, e)
		if err != nil {
			t.Errorf("open %s: %v", e.Name, err)
			continue
		}
		data, _ := os.ReadFile(mods[e.Name])
		if !bytes.Equal(f.Data, data) || f.SHA256 != e.SHA256 {
			t.Errorf("%s: the installed bytes or hash differ from the module's", e.Name)
		}
		f.Close()
	}
	if len(names) != 2 || names[0] != "lp_b" || names[1] != "lp_c" {
		t.Errorf("installed %v", names)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, release, "lp_a.ko")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("uninstalled file still there: %v", err)
	}
	if err := s.Uninstall("lp_a", release); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("second uninstall: %v", err)
	}
	os.WriteFile(filepath.Join(s.Dir, release, "lp_b.ko"), []byte("x"), 0o644)
	if _, err := s.Open(release, man.Patches[0]); !errors.Is(err, ErrChecksum) {
		t.Errorf("tampered file: %v", err)
	}
}

// TestConcurrentInstalls installs modules at once: the manifest must keep
// every one of them.
func TestConcurrentInstalls(t *testing.T) {
	var names []string
	for i := 0; i < 8; i++ {
		names = append(names, fmt.Sprintf("lp_%d", i))
	}
	mods := modules(t, names...)
	s := Open(t.TempDir())
	var wg sync.WaitGroup
	errs := make(chan error, len(names))
	for _, n := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Install(mods[n], "")
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	man, err := s.Manifest(release)
	if err != nil {
		t.Fatal(err)
	}
	orders := map[int]bool{}
	for _, e := range man.Patches {
		orders[e.Order] = true
	}
	if len(man.Patches) != len(names) || len(orders) != len(names) {
		t.Errorf("manifest has %d patches with %d distinct orders, want %d", len(man.Patches), len(orders), len(names))
	}
}

func TestInstallRefuses(t *testing.T) {
	mods := modules(t, "lp_a", "plain")
	s := Open(t.TempDir())
	if _, err := s.Install(mods["lp_a"], "5.10.0-1-amd64"); !errors.Is(err, livepatch.ErrWrongKernel) {
		t.Errorf("--kernel of another release: %v", err)
	}
	if _, err := s.Install(mods["plain"], ""); !errors.Is(err, livepatch.ErrNotLivepatch) {
		t.Errorf("a plain module: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.ko")
	os.WriteFile(bad, []byte("not a module"), 0o644)
	if _, err := s.Install(bad, ""); !errors.Is(err, kmod.ErrCorrupt) {
		t.Errorf("not a module: %v", err)
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
