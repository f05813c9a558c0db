package debian

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/graft-live/graft/internal/flock"
)

// Part selects what Fetch brings into the cache.
type Part uint

const (
	// Image is linux-image-REL: boot/vmlinuz-REL, boot/config-REL and
	// lib/modules/REL.
	Image Part = 1 << iota
	// Headers is linux-headers-REL with its -common and linux-kbuild
	// packages, unpacked under one root so that `make -C HeadersDir M=DIR`
	// builds modules.
	Headers
	// Source is linux-source-X.Y, unpacked into a source tree.
	Source
	// Symbols is linux-image-REL-dbg (about 860 MB): only the real System.map
	// and the debug vmlinux are kept.
	Symbols
)

var partNames = []struct {
	p    Part
	name string
}{{Image, "image"}, {Headers, "headers"}, {Source, "source"}, {Symbols, "symbols"}}

func (p Part) String() string {
	var names []string
	for _, n := range partNames {
		if p&n.p != 0 {
			names = append(names, n.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}

// Tree is what the cache holds of one kernel. Paths are empty for parts that
// are not present.
type Tree struct {
	Kernel
	// Dir is this kernel's cache directory, keyed by release and version.
	Dir        string `json:"dir"`
	Vmlinuz    string `json:"vmlinuz,omitempty"`
	Config     string `json:"config,omitempty"`
	ModulesDir string `json:"modules_dir,omitempty"`
	// HeadersDir is usr/src/linux-headers-REL, with Module.symvers.
	HeadersDir string `json:"headers_dir,omitempty"`
	// SourceDir is the top of the unpacked source tree.
	SourceDir string `json:"source_dir,omitempty"`
	// SystemMap and Vmlinux are the real symbols from the -dbg package.
	SystemMap string `json:"system_map,omitempty"`
	Vmlinux   string `json:"vmlinux,omitempty"`
	// Parts says what is present.
	Parts Part `json:"-"`
}

// Event reports progress of a fetch.
type Event struct {
	// Package is the Debian package, e.g. "linux-image-6.1.0-56-amd64".
	Package string
	// Phase is "download", "extract" or "done".
	Phase string
	// Done and Total count bytes; Total is 0 when unknown.
	Done, Total int64
}

// Progress receives progress events; nil means silent.
type Progress func(Event)

func (p Progress) send(e Event) {
	if p != nil {
		p(e)
	}
}

// Cache is the on-disk cache of Debian kernel artifacts.
type Cache struct {
	dir string
}

// DefaultCacheDir is $GRAFT_CACHE, else $XDG_CACHE_HOME/graft, else
// ~/.cache/graft.
func DefaultCacheDir() (string, error) {
	if d := os.Getenv("GRAFT_CACHE"); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "graft"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory: set GRAFT_CACHE: %w", err)
	}
	return filepath.Join(home, ".cache", "graft"), nil
}

// OpenCache opens (creating) the cache in dir; "" means DefaultCacheDir.
func OpenCache(dir string) (*Cache, error) {
	if dir == "" {
		var err error
		if dir, err = DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "kernels"), 0o755); err != nil {
		return nil, fmt.Errorf("open cache: %w", err)
	}
	return &Cache{dir: dir}, nil
}

// Dir is the cache's root directory.
func (c *Cache) Dir() string { return c.dir }

func (c *Cache) kernelDir(k Kernel) string {
	return filepath.Join(c.dir, "kernels", k.Release+"_"+k.Version)
}

// Lookup returns what the cache holds for k, without fetching.
func (c *Cache) Lookup(k Kernel) (*Tree, error) {
	t := &Tree{Kernel: k, Dir: c.kernelDir(k)}
	img := filepath.Join(t.Dir, "image")
	if isDir(img) {
		t.Parts |= Image
		t.Vmlinuz = filepath.Join(img, "boot", "vmlinuz-"+k.Release)
		t.Config = filepath.Join(img, "boot", "config-"+k.Release)
		t.ModulesDir = filepath.Join(img, "lib", "modules", k.Release)
		if !isDir(t.ModulesDir) {
			// Debian 13 and later install into /usr.
			t.ModulesDir = filepath.Join(img, "usr", "lib", "modules", k.Release)
		}
		if !isFile(t.Vmlinuz) {
			// Split packages (Debian 14) keep the image and its config
			// beside the modules.
			t.Vmlinuz = filepath.Join(t.ModulesDir, "vmlinuz")
			t.Config = filepath.Join(t.ModulesDir, "config")
		}
	}
	if hdr := filepath.Join(t.Dir, "headers"); isDir(hdr) {
		t.Parts |= Headers
		t.HeadersDir = filepath.Join(hdr, "usr", "src", "linux-headers-"+k.Release)
	}
	if src := filepath.Join(t.Dir, "source"); isDir(src) {
		t.Parts |= Source
		// A link to the shared tree (Source): the real path, so that
		// copies of the tree copy files, not the link.
		if real, err := filepath.EvalSymlinks(src); err == nil {
			src = real
		}
		t.SourceDir = src
	}
	if sym := filepath.Join(t.Dir, "symbols"); isDir(sym) {
		t.Parts |= Symbols
		t.SystemMap = filepath.Join(sym, "System.map-"+k.Release)
		t.Vmlinux = filepath.Join(sym, "vmlinux-"+k.Release)
	}
	return t, nil
}

// List returns every kernel in the cache with what it holds.
func (c *Cache) List() ([]*Tree, error) {
	entries, err := os.ReadDir(filepath.Join(c.dir, "kernels"))
	if err != nil {
		return nil, err
	}
	var trees []*Tree
	for _, e := range entries {
		rel, ver, ok := strings.Cut(e.Name(), "_")
		if !e.IsDir() || !ok {
			continue
		}
		t, err := c.Lookup(Kernel{Release: rel, Version: ver})
		if err != nil {
			return nil, err
		}
		if t.Parts != 0 {
			trees = append(trees, t)
		}
	}
	sort.Slice(trees, func(i, j int) bool { return naturalLess(trees[j].Release, trees[i].Release) })
	return trees, nil
}

// Fetch makes sure the parts of k are in the cache, downloading only what is
// missing, and returns the tree.
func (c *Cache) Fetch(ctx context.Context, k Kernel, parts Part, progress Progress) (*Tree, error) {
	if k.Release == "" || k.Version == "" {
		return nil, fmt.Errorf("fetch: kernel release and version are required (use Resolve)")
	}
	dir := c.kernelDir(k)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for _, pn := range partNames {
		if parts&pn.p == 0 || isDir(filepath.Join(dir, pn.name)) {
			continue
		}
		err := flock.Do(ctx, filepath.Join(dir, ".lock"), func() error {
			return c.fillPart(ctx, k, pn.p, filepath.Join(dir, pn.name), progress)
		})
		if err != nil {
			return nil, fmt.Errorf("fetch %s of %s: %w", pn.name, k, err)
		}
	}
	return c.Lookup(k)
}

// fillPart creates dst complete or not at all: everything is unpacked into a
// temporary sibling, renamed into place at the end.
func (c *Cache) fillPart(ctx context.Context, k Kernel, p Part, dst string, progress Progress) error {
	if isDir(dst) {
		return nil // another process filled it while we waited for the lock
	}
	removeStale(filepath.Dir(dst), filepath.Base(dst))
	tmp, err := os.MkdirTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "root")
	switch p {
	case Image:
		err = c.fillImage(ctx, k, root, progress)
	case Headers:
		err = c.fillHeaders(ctx, k, root, dst, progress)
	case Source:
		err = c.fillSource(ctx, k, root, tmp, progress)
	case Symbols:
		err = c.fillSymbols(ctx, k, root, tmp, progress)
	}
	if err != nil {
		return err
	}
	return os.Rename(root, dst)
}

type pkgVer struct{ name, version string }

// fillImage unpacks the kernel image into root. Newer kernels (Debian 14)
// split it: linux-image-REL is a meta-package of linux-binary-REL (the
// image), linux-modules-REL and linux-base-REL (config, System.map).
func (c *Cache) fillImage(ctx context.Context, k Kernel, root string, progress Progress) error {
	a := k.Archive()
	fields, err := a.showPackage(ctx, k.imagePackage(), k.Version)
	if err != nil {
		return err
	}
	pkgs := []pkgVer{{k.imagePackage(), k.Version}}
	for _, d := range parseDepends(fields["Depends"]) {
		for _, part := range []string{"linux-binary-", "linux-modules-", "linux-base-"} {
			if d.name == part+k.Release {
				pkgs = append(pkgs, pkgVer{d.name, k.Version})
			}
		}
	}
	return c.unpack(ctx, a, root, progress, pkgs...)
}

// unpack downloads packages from a and extracts them all into root.
func (c *Cache) unpack(ctx context.Context, a *Archive, root string, progress Progress, pkgs ...pkgVer) error {
	dl, err := os.MkdirTemp(filepath.Dir(root), "download-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dl)
	for _, p := range pkgs {
		deb, err := a.download(ctx, dl, p, progress)
		if err != nil {
			return err
		}
		progress.send(Event{Package: p.name, Phase: "extract"})
		if err := run(ctx, "", "dpkg-deb", "-x", deb, root); err != nil {
			return err
		}
		os.Remove(deb)
		progress.send(Event{Package: p.name, Phase: "done"})
	}
	return nil
}

// fillHeaders unpacks the headers into root, which becomes dst when
// complete.
func (c *Cache) fillHeaders(ctx context.Context, k Kernel, root, dst string, progress Progress) error {
	a := k.Archive()
	pkg := "linux-headers-" + k.Release
	fields, err := a.showPackage(ctx, pkg, k.Version)
	if err != nil {
		return err
	}
	pkgs := []pkgVer{{pkg, k.Version}}
	for _, d := range parseDepends(fields["Depends"]) {
		// linux-headers-REL-common and linux-kbuild-X.Y come from the same
		// source package: -common at the same version, linux-kbuild at
		// that version or newer (the archive keeps only the newest of a
		// package whose name has no ABI number), as apt would install.
		if !strings.HasPrefix(d.name, "linux-headers-") && !strings.HasPrefix(d.name, "linux-kbuild-") {
			continue
		}
		v, err := a.satisfying(ctx, d, k.Version)
		if err != nil {
			return err
		}
		pkgs = append(pkgs, pkgVer{d.name, v})
	}
	if err := c.unpack(ctx, a, root, progress, pkgs...); err != nil {
		return err
	}
	// The headers' Makefile names the installed headers by absolute paths:
	// it includes the -common Makefile, and from Linux 7 it sets
	// KBUILD_OUTPUT; point them into the cache. (The scripts and tools
	// symlinks are relative and already resolve here.)
	mk := filepath.Join(root, "usr", "src", "linux-headers-"+k.Release, "Makefile")
	b, err := os.ReadFile(mk)
	if err != nil {
		return fmt.Errorf("headers: %w", err)
	}
	fixed := installedPath.ReplaceAllString(string(b), "${1}"+filepath.Join(dst, "usr", "src")+"/")
	if err := os.WriteFile(mk, []byte(fixed), 0o644); err != nil {
		return err
	}
	host, err := a.hostDepends(ctx, pkgs)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(filepath.Dir(mk), HostDependsFile), []byte(strings.Join(host, "\n")+"\n"), 0o644)
}

// HostDependsFile, in a headers tree, lists the packages of the host that
// building modules against it needs: what installing the headers would
// have pulled in (the compiler, pahole, libraries of the kbuild tools).
const HostDependsFile = ".graft-host-depends"

// hostDepends returns what the kernel packages pkgs depend on that is not
// itself a kernel package; the compiler packages (linux-compiler-*) stand
// for what they depend on.
func (a *Archive) hostDepends(ctx context.Context, pkgs []pkgVer) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	queue := append([]pkgVer(nil), pkgs...)
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		fields, err := a.showPackage(ctx, p.name, p.version)
		if err != nil {
			return nil, err
		}
		for _, d := range parseDepends(fields["Depends"]) {
			switch {
			case seen[d.name]:
			case strings.HasPrefix(d.name, "linux-compiler-"):
				seen[d.name] = true
				queue = append(queue, pkgVer{d.name, ""})
			case strings.HasPrefix(d.name, "linux-"):
			default:
				seen[d.name] = true
				out = append(out, d.name)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

func (c *Cache) fillSource(ctx context.Context, k Kernel, root, tmp string, progress Progress) error {
	series, err := SourceSeries(k.Release)
	if err != nil {
		return err
	}
	src, err := c.source(ctx, k.Archive(), series, k.Version, progress)
	if err != nil {
		return err
	}
	// The kernel's part is a link to the shared tree, relative to the
	// kernel's directory, where it ends up.
	rel, err := filepath.Rel(filepath.Dir(filepath.Dir(root)), src)
	if err != nil {
		return err
	}
	return os.Symlink(rel, root)
}

// Source returns the unpacked tree of linux-source-SERIES ("6.1") at a
// package version, fetched into the cache if it is not there: the source
// that every kernel of that upload is built from, whatever its flavour.
// The tree is shared; nobody writes to it.
func (c *Cache) Source(ctx context.Context, series, version string, progress Progress) (string, error) {
	pkg := "linux-source-" + series
	a := SystemArchive
	if vs, err := a.packageVersions(ctx, pkg); err != nil || !slices.Contains(vs, version) {
		if a, err = c.GraftArchive(ctx); err != nil {
			return "", err
		}
		vs, err := a.packageVersions(ctx, pkg)
		if err != nil {
			return "", err
		}
		if !slices.Contains(vs, version) {
			return "", fmt.Errorf("%w: no %s %s in the apt sources or in %s", ErrUnknownRelease, pkg, version, a)
		}
	}
	return c.source(ctx, a, series, version, progress)
}

// source fills the shared source tree of linux-source-SERIES at version
// from the archive a, once.
func (c *Cache) source(ctx context.Context, a *Archive, series, version string, progress Progress) (string, error) {
	pkg := "linux-source-" + series
	dst, err := c.shared(ctx, "sources", pkg+"_"+strings.ReplaceAll(version, ":", "%3a"), func(tmp, root string) error {
		debRoot := filepath.Join(tmp, "deb")
		if err := c.unpack(ctx, a, debRoot, progress, pkgVer{pkg, version}); err != nil {
			return err
		}
		tarballs, _ := filepath.Glob(filepath.Join(debRoot, "usr", "src", "linux-source-*.tar.*"))
		if len(tarballs) != 1 {
			return fmt.Errorf("%s: want one source tarball in usr/src, found %d", pkg, len(tarballs))
		}
		progress.send(Event{Package: pkg, Phase: "extract"})
		if err := os.MkdirAll(root, 0o755); err != nil {
			return err
		}
		if err := run(ctx, "", "tar", "-xf", tarballs[0], "-C", root, "--strip-components=1"); err != nil {
			return err
		}
		progress.send(Event{Package: pkg, Phase: "done"})
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("source %s %s: %w", pkg, version, err)
	}
	return dst, nil
}

// shared returns the directory name under parent in the cache, filling it
// once with fill (under a lock, so that several processes may ask at
// once): fill writes root inside its temporary directory tmp, which
// appears as the directory only when complete.
func (c *Cache) shared(ctx context.Context, parent, name string, fill func(tmp, root string) error) (string, error) {
	parent = filepath.Join(c.dir, parent)
	dst := filepath.Join(parent, name)
	if isDir(dst) {
		return dst, nil
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
	}
	err := flock.Do(ctx, dst+".lock", func() error {
		if isDir(dst) {
			return nil
		}
		removeStale(parent, name)
		tmp, err := os.MkdirTemp(parent, "."+name+".tmp-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		root := filepath.Join(tmp, "root")
		if err := fill(tmp, root); err != nil {
			return err
		}
		return os.Rename(root, dst)
	})
	return dst, err
}

func (c *Cache) fillSymbols(ctx context.Context, k Kernel, root, tmp string, progress Progress) error {
	// The package unpacks to about 5.6 GB, of which two files are kept: only
	// those are taken out of its data archive.
	pkg := pkgVer{k.imagePackage() + "-dbg", k.Version}
	dl := filepath.Join(tmp, "download")
	if err := os.MkdirAll(dl, 0o755); err != nil {
		return err
	}
	deb, err := k.Archive().download(ctx, dl, pkg, progress)
	if err != nil {
		return err
	}
	progress.send(Event{Package: pkg.name, Phase: "extract"})
	debRoot := filepath.Join(tmp, "deb")
	if err := os.MkdirAll(debRoot, 0o755); err != nil {
		return err
	}
	files := []string{"System.map-" + k.Release, "vmlinux-" + k.Release}
	// Up to Linux 6 they are in /usr/lib/debug/boot; from 7 beside the
	// modules' debug files (with links in boot).
	members := map[string]string{
		"./usr/lib/debug/boot/" + files[0]:                         files[0],
		"./usr/lib/debug/boot/" + files[1]:                         files[1],
		"./usr/lib/debug/lib/modules/" + k.Release + "/System.map": files[0],
		"./usr/lib/debug/lib/modules/" + k.Release + "/vmlinux":    files[1],
	}
	if err := extractFiles(ctx, deb, debRoot, members); err != nil {
		return fmt.Errorf("symbols: %w", err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	for _, name := range files {
		if err := os.Rename(filepath.Join(debRoot, name), filepath.Join(root, name)); err != nil {
			return fmt.Errorf("symbols: %w", err)
		}
	}
	progress.send(Event{Package: pkg.name, Phase: "done"})
	return nil
}

// extractFiles takes files out of a .deb into dir: members maps paths in
// the package ("./usr/lib/debug/boot/vmlinux-REL") to the file names to
// write; several paths may name one file, which is written from the
// first of them found. It stops reading the package once every file is
// written: the boot files of 6.x -dbg packages come first in their data
// archive, and decompressing the other 5 GB would take half a minute for
// nothing.
func extractFiles(ctx context.Context, deb, dir string, members map[string]string) error {
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		return ErrNoAPT
	}
	dctx, stop := context.WithCancel(ctx)
	defer stop()
	dpkg := exec.CommandContext(dctx, "dpkg-deb", "--fsys-tarfile", deb)
	// dpkg-deb decompresses in child processes, which hold the pipes
	// open: stopping it stops its whole process group.
	dpkg.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	dpkg.Cancel = func() error { return syscall.Kill(-dpkg.Process.Pid, syscall.SIGKILL) }
	dpkg.WaitDelay = 5 * time.Second
	pipe, err := dpkg.StdoutPipe()
	if err != nil {
		return err
	}
	var dpkgErr strings.Builder
	dpkg.Stderr = &dpkgErr
	if err := dpkg.Start(); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, n := range members {
		want[n] = true
	}
	err = func() error {
		tr := tar.NewReader(pipe)
		for len(want) > 0 {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			name := members[h.Name]
			if !want[name] || h.Typeflag != tar.TypeReg {
				continue
			}
			delete(want, name)
			f, err := os.Create(filepath.Join(dir, name))
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
		return nil
	}()
	// What is left of the archive is not needed: stop dpkg-deb.
	stop()
	dpkg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("read %s: %v: %s", deb, err, lastLines(dpkgErr.String(), 5))
	}
	if len(want) > 0 {
		var missing []string
		for n := range want {
			missing = append(missing, n)
		}
		sort.Strings(missing)
		return fmt.Errorf("%s has no %s", deb, strings.Join(missing, ", "))
	}
	return nil
}

// SourceSeries maps a release (6.1.0-56-amd64) to its source series (6.1),
// the suffix of the linux-source-X.Y package it is built from.
func SourceSeries(release string) (string, error) {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return "", fmt.Errorf("%w: %q is not a kernel release like 6.1.0-56-amd64", ErrUnknownRelease, release)
	}
	minor, _, _ := strings.Cut(parts[1], "-")
	minor, _, _ = strings.Cut(minor, "+")
	return parts[0] + "." + minor, nil
}

// Package fetches any binary package at version ("" = candidate) into the
// cache and returns the directory it is unpacked in.
func (c *Cache) Package(ctx context.Context, name, version string, progress Progress) (string, error) {
	if version == "" {
		vs, err := SystemArchive.packageVersions(ctx, name)
		if err != nil {
			return "", err
		}
		if len(vs) == 0 {
			return "", fmt.Errorf("%w: no package %s in the apt sources (run 'apt-get update'?)", ErrUnknownRelease, name)
		}
		version = vs[0]
	}
	dst, err := c.shared(ctx, "packages", name+"_"+strings.ReplaceAll(version, ":", "%3a"), func(_, root string) error {
		return c.unpack(ctx, SystemArchive, root, progress, pkgVer{name, version})
	})
	if err != nil {
		return "", fmt.Errorf("fetch %s %s: %w", name, version, err)
	}
	return dst, nil
}

// download runs `apt-get download` into dir and returns the .deb, reporting
// progress by watching the file grow against the package's Size.
func (a *Archive) download(ctx context.Context, dir string, p pkgVer, progress Progress) (string, error) {
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", ErrNoAPT
	}
	var total int64
	if progress != nil {
		if fields, err := a.showPackage(ctx, p.name, p.version); err == nil {
			fmt.Sscan(fields["Size"], &total)
		}
	}
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			progress.send(Event{Package: p.name, Phase: "download", Done: dirSize(dir), Total: total})
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	// apt-get drops privileges to _apt for downloads, which cannot write to
	// a private directory; the download is checked against the signed
	// package lists either way.
	err := a.aptGet(ctx, dir, "download", "-q", "-o", "APT::Sandbox::User=root", p.name+"="+p.version)
	close(stop)
	<-watched
	if err != nil {
		if strings.Contains(err.Error(), "Unable to locate") || strings.Contains(err.Error(), "not found") {
			return "", fmt.Errorf("%w: %s=%s: %v (run 'apt-get update'?)", ErrUnknownRelease, p.name, p.version, err)
		}
		return "", err
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	for _, d := range debs {
		if strings.HasPrefix(filepath.Base(d), p.name+"_") {
			progress.send(Event{Package: p.name, Phase: "download", Done: total, Total: total})
			return d, nil
		}
	}
	return "", fmt.Errorf("apt-get download %s=%s left no .deb", p.name, p.version)
}

func run(ctx context.Context, dir, name string, args ...string) error {
	if _, err := exec.LookPath(name); err != nil {
		if name == "dpkg-deb" || name == "apt-get" {
			return ErrNoAPT
		}
		return fmt.Errorf("%s not found: %w", name, err)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, lastLines(string(out), 5))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// removeStale deletes what interrupted fills of name left in dir. Callers
// hold the lock, so no live fill is among them.
func removeStale(dir, name string) {
	stale, _ := filepath.Glob(filepath.Join(dir, "."+name+".tmp-*"))
	for _, s := range stale {
		os.RemoveAll(s)
	}
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// installedPath matches an absolute path into the installed headers in a
// Makefile.
var installedPath = regexp.MustCompile(`(?m)(^|[ =])/usr/src/`)

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
