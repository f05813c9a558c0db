package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/graft-live/graft/internal/flock"
	"github.com/graft-live/graft/kmod"
	"github.com/graft-live/graft/livepatch"
)

// DefaultDir is where installed patches live.
const DefaultDir = "/var/lib/graft"

var (
	// ErrNotInstalled means no installed patch has that name.
	ErrNotInstalled = errors.New("not installed")
	// ErrChecksum means an installed file no longer matches its sha256.
	ErrChecksum = errors.New("installed file does not match its recorded sha256")
)

// Entry is one installed patch.
type Entry struct {
	// Name is the module name (and the livepatch's sysfs name).
	Name string `json:"name"`
	// File is the module's file name inside the release directory.
	File        string    `json:"file"`
	SHA256      string    `json:"sha256"`
	InstalledAt time.Time `json:"installed_at"`
	// Order is the position in which boot applies it (1 = first).
	Order int `json:"order"`
}

// Manifest lists the patches installed for one kernel release.
type Manifest struct {
	Release string  `json:"release"`
	Patches []Entry `json:"patches"`
}

// Store is a directory of installed patches.
type Store struct {
	Dir string
	// Cmdline is the kernel command line file, for graft.enable=0
	// (default /proc/cmdline).
	Cmdline string
}

// Open returns the store in dir ("" = DefaultDir).
func Open(dir string) *Store {
	if dir == "" {
		dir = DefaultDir
	}
	return &Store{Dir: dir, Cmdline: "/proc/cmdline"}
}

func (s *Store) releaseDir(release string) string { return filepath.Join(s.Dir, release) }

// Manifest reads the manifest of release; an empty one when nothing is
// installed.
func (s *Store) Manifest(release string) (*Manifest, error) {
	b, err := os.ReadFile(filepath.Join(s.releaseDir(release), "manifest.json"))
	if errors.Is(err, os.ErrNotExist) {
		return &Manifest{Release: release, Patches: []Entry{}}, nil
	}
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest of %s: %w", release, err)
	}
	sort.SliceStable(m.Patches, func(i, j int) bool { return m.Patches[i].Order < m.Patches[j].Order })
	return &m, nil
}

func (s *Store) writeManifest(m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(s.releaseDir(m.Release), "manifest.json"), b, 0o644)
}

// Install copies the livepatch module at path into the store for the
// release it was built for (release, when given, must match it) and appends
// it to the boot order; installing a patch of the same name again replaces
// the file and keeps its place. The file is read once: the bytes checked
// are the bytes hashed and copied. The manifest changes under a lock, so
// that installs at the same time keep every entry.
func (s *Store) Install(path, release string) (*Entry, error) {
	f, err := kmod.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if release == "" {
		release = f.Release()
	}
	if err := livepatch.CheckModule(f.Module, path, release); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(s.releaseDir(release), 0o755); err != nil {
		return nil, fmt.Errorf("install %s: %w", path, err)
	}
	e := Entry{Name: f.Name, File: f.Name + ".ko", SHA256: f.SHA256, InstalledAt: time.Now().UTC().Truncate(time.Second)}
	err = s.locked(release, func() error {
		if err := writeAtomic(filepath.Join(s.releaseDir(release), e.File), f.Data, 0o644); err != nil {
			return fmt.Errorf("install %s: %w", path, err)
		}
		man, err := s.Manifest(release)
		if err != nil {
			return err
		}
		replaced := false
		for i := range man.Patches {
			if man.Patches[i].Name == e.Name {
				e.Order = man.Patches[i].Order
				man.Patches[i] = e
				replaced = true
			}
		}
		if !replaced {
			e.Order = len(man.Patches) + 1
			man.Patches = append(man.Patches, e)
		}
		return s.writeManifest(man)
	})
	if err != nil {
		return nil, err
	}
	return &e, nil
}

// locked runs fn holding the lock of release's directory.
func (s *Store) locked(release string, fn func() error) error {
	if err := os.MkdirAll(s.releaseDir(release), 0o755); err != nil {
		return err
	}
	return flock.Do(context.Background(), filepath.Join(s.releaseDir(release), ".lock"), fn)
}

// Uninstall removes the patch name from release's store. It does not touch
// the running kernel ('graft revert' does).
func (s *Store) Uninstall(name, release string) error {
	return s.locked(release, func() error {
		man, err := s.Manifest(release)
		if err != nil {
			return err
		}
		kept := man.Patches[:0]
		var gone *Entry
		for _, e := range man.Patches {
			if e.Name == name {
				e := e
				gone = &e
				continue
			}
			e.Order = len(kept) + 1
			kept = append(kept, e)
		}
		if gone == nil {
			return fmt.Errorf("%s for %s: %w ('graft install --list' shows what is)", name, release, ErrNotInstalled)
		}
		man.Patches = kept
		if err := s.writeManifest(man); err != nil {
			return err
		}
		if err := os.Remove(filepath.Join(s.releaseDir(release), gone.File)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	})
}

// Open opens an installed patch and checks the file against its recorded
// sha256; the caller loads that same open file and closes it.
func (s *Store) Open(release string, e Entry) (*kmod.File, error) {
	p := filepath.Join(s.releaseDir(release), e.File)
	f, err := kmod.Open(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", e.Name, ErrChecksum, err)
	}
	if f.SHA256 != e.SHA256 {
		f.Close()
		return nil, fmt.Errorf("%s: %w: %s has sha256 %s, recorded %s (reinstall it with 'graft install')", e.Name, ErrChecksum, p, f.SHA256[:16], e.SHA256[:16])
	}
	return f, nil
}

// BootResult says what Boot did with each installed patch.
type BootResult struct {
	Release  string   `json:"release"`
	Disabled bool     `json:"disabled"` // graft.enable=0 on the kernel command line
	Applied  []string `json:"applied"`
	Skipped  []string `json:"skipped"` // already loaded
	Failed   []string `json:"failed"`
}

// Boot applies the installed patches of the running kernel in order. It
// does nothing when the command line has graft.enable=0 or nothing is
// installed; it skips patches already loaded; a patch that fails (checksum,
// load, stall) is reported and the others are still applied.
func (s *Store) Boot(ctx context.Context, sys *livepatch.System, opts livepatch.Options) (*BootResult, error) {
	release, err := sys.Release()
	if err != nil {
		return nil, err
	}
	res := &BootResult{Release: release, Applied: []string{}, Skipped: []string{}, Failed: []string{}}
	if s.disabledByCmdline() {
		res.Disabled = true
		return res, nil
	}
	man, err := s.Manifest(release)
	if err != nil {
		return nil, err
	}
	if len(man.Patches) == 0 {
		return res, nil
	}
	loaded, _ := sys.LoadedModules()
	var errs []error
	for _, e := range man.Patches {
		if slices.Contains(loaded, e.Name) {
			res.Skipped = append(res.Skipped, e.Name)
			continue
		}
		f, err := s.Open(release, e)
		if err == nil {
			err = sys.ApplyFile(ctx, f, opts)
			f.Close()
		}
		if err != nil {
			res.Failed = append(res.Failed, e.Name)
			errs = append(errs, err)
			continue
		}
		res.Applied = append(res.Applied, e.Name)
	}
	return res, errors.Join(errs...)
}

func (s *Store) disabledByCmdline() bool {
	b, err := os.ReadFile(s.Cmdline)
	if err != nil {
		return false
	}
	for _, f := range strings.Fields(string(b)) {
		if f == "graft.enable=0" {
			return true
		}
	}
	return false
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
