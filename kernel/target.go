package kernel

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/graft-live/graft/distro/debian"
)

// Part selects artifacts of a target kernel; see distro/debian.
type Part = debian.Part

// Parts of a target kernel.
const (
	Image   = debian.Image
	Headers = debian.Headers
	Source  = debian.Source
	Symbols = debian.Symbols
)

// Progress receives the events of fetching a target's packages; see
// distro/debian.
type Progress = debian.Progress

// Spec names a target kernel.
type Spec struct {
	// Release is a Debian kernel release (uname -r), optionally pinned to a
	// package version: "6.1.0-56-amd64" or "6.1.0-56-amd64=6.1.192-2". ""
	// means Debian's default kernel (the candidate of linux-image-amd64).
	Release string
	// Running targets the kernel this machine runs; Release must be empty.
	Running bool
}

// ParseSpec reads a --kernel argument: a release, "running" for the
// running kernel, or "" for Debian's default.
func ParseSpec(s string) Spec {
	if s == "running" {
		return Spec{Running: true}
	}
	return Spec{Release: s}
}

func (s Spec) String() string {
	switch {
	case s.Running:
		return "running"
	case s.Release == "":
		return "default"
	}
	return s.Release
}

// Target is a resolved kernel with the paths of the artifacts in the cache.
// A path is empty when that part has not been fetched.
type Target struct {
	// Release is the kernel release, as uname -r prints it.
	Release string `json:"release"`
	// Version is the Debian package version of the kernel.
	Version string `json:"version"`
	// Suite is the Debian suite that offers it, when known.
	Suite string `json:"suite,omitempty"`
	// Running says the target is the kernel this machine runs, so that its
	// /proc/kallsyms can stand in for the symbols.
	Running bool `json:"running,omitempty"`
	// Dir is the target's directory in the cache: fetched parts and what
	// graft derives from them (prepared trees).
	Dir string `json:"dir"`
	// Config is the kernel's .config.
	Config string `json:"config,omitempty"`
	// Vmlinuz is the bootable image; ModulesDir is lib/modules/RELEASE.
	Vmlinuz    string `json:"vmlinuz,omitempty"`
	ModulesDir string `json:"modules_dir,omitempty"`
	// HeadersDir is the headers tree that modules build against; it holds
	// Module.symvers.
	HeadersDir string `json:"headers_dir,omitempty"`
	// SourceDir is the pristine source tree; graft never writes to it.
	SourceDir string `json:"source_dir,omitempty"`
	// SystemMap and Vmlinux are the real symbols (the -dbg vmlinux has the
	// STT_FILE symbols that tell which source file a local symbol is from).
	SystemMap string `json:"system_map,omitempty"`
	Vmlinux   string `json:"vmlinux,omitempty"`
	// Parts says which parts are in the cache.
	Parts Part `json:"-"`
}

func (t *Target) String() string { return t.Release + " (" + t.Version + ")" }

// PreparedDir is where the target's source is configured and prepared for
// compiling single objects (kbuild.Prepare).
func (t *Target) PreparedDir() string { return filepath.Join(t.Dir, "prepared") }

// ScratchDir is a second prepared tree, for compiling patched objects while
// the prepared tree compiles the originals.
func (t *Target) ScratchDir() string { return filepath.Join(t.Dir, "prepared-patched") }

// ModuleSymvers is the target's Module.symvers (in the headers).
func (t *Target) ModuleSymvers() string {
	if t.HeadersDir == "" {
		return ""
	}
	return filepath.Join(t.HeadersDir, "Module.symvers")
}

// Cache is graft's cache of target kernels.
type Cache struct {
	dir string
	deb *debian.Cache
}

// CacheDir is graft's cache root: $GRAFT_CACHE, else $XDG_CACHE_HOME/graft,
// else ~/.cache/graft.
func CacheDir() (string, error) { return debian.DefaultCacheDir() }

// OpenCache opens (creating) the cache in dir; "" means CacheDir.
func OpenCache(dir string) (*Cache, error) {
	if dir == "" {
		var err error
		if dir, err = CacheDir(); err != nil {
			return nil, err
		}
	}
	deb, err := debian.OpenCache(dir)
	if err != nil {
		return nil, err
	}
	return &Cache{dir: deb.Dir(), deb: deb}, nil
}

// Dir is the cache root.
func (c *Cache) Dir() string { return c.dir }

// Debian is the Debian package cache below the root.
func (c *Cache) Debian() *debian.Cache { return c.deb }

// Resolve finds the kernel that spec names and makes sure parts of it are
// in the cache, fetching what is missing (progress may be nil).
func (c *Cache) Resolve(ctx context.Context, spec Spec, parts Part, progress debian.Progress) (*Target, error) {
	release := spec.Release
	if spec.Running {
		if release != "" {
			return nil, fmt.Errorf("kernel: a release (%s) and the running kernel cannot both be the target", release)
		}
		var err error
		if release, err = RunningRelease(); err != nil {
			return nil, err
		}
	}
	// A pinned release whose parts are all in the cache needs no apt.
	if rel, ver, pinned := strings.Cut(release, "="); pinned {
		tree, err := c.deb.Lookup(debian.Kernel{Release: rel, Version: ver})
		if err == nil && tree.Parts&parts == parts && tree.Parts != 0 {
			t := fromTree(tree)
			t.Running, t.Suite = spec.Running, debian.SuiteOf(rel)
			return t, nil
		}
	}
	k, err := c.deb.Resolve(ctx, release)
	if err != nil {
		return nil, err
	}
	tree, err := c.deb.Fetch(ctx, k, parts, progress)
	if err != nil {
		return nil, err
	}
	t := fromTree(tree)
	t.Running, t.Suite = spec.Running, k.Suite
	return t, nil
}

// Lookup returns what the cache holds of spec without fetching anything.
func (c *Cache) Lookup(ctx context.Context, spec Spec) (*Target, error) {
	return c.Resolve(ctx, spec, 0, nil)
}

func fromTree(tr *debian.Tree) *Target {
	return &Target{
		Release: tr.Release, Version: tr.Version, Dir: tr.Dir,
		Config: tr.Config, Vmlinuz: tr.Vmlinuz, ModulesDir: tr.ModulesDir,
		HeadersDir: tr.HeadersDir, SourceDir: tr.SourceDir,
		SystemMap: tr.SystemMap, Vmlinux: tr.Vmlinux, Parts: tr.Parts,
	}
}

// RunningRelease is the release of the kernel this machine runs.
func RunningRelease() (string, error) {
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "", fmt.Errorf("kernel: running release: %w", err)
	}
	return unix.ByteSliceToString(u.Release[:]), nil
}
