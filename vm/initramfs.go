package vm

import (
	"bufio"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/graft-live/graft/kmod"
	"github.com/graft-live/graft/vm/guest"
)

// File is a host file copied into the guest.
type File struct {
	// Host is the path on the host.
	Host string
	// Guest is the absolute path in the guest.
	Guest string
	// Mode overrides the permission bits (0 keeps the host's).
	Mode os.FileMode
}

// ParseFile parses the --file syntax HOST[:GUEST]. Without GUEST the file
// keeps its host path if absolute, else goes to / under its base name.
func ParseFile(s string) (File, error) {
	host, guestPath, found := strings.Cut(s, ":")
	if host == "" || (found && guestPath == "") {
		return File{}, fmt.Errorf("--file %q: want HOST[:GUEST]", s)
	}
	if !found {
		guestPath = host
		if !filepath.IsAbs(host) {
			guestPath = "/" + filepath.Base(host)
		}
	}
	if !path.IsAbs(guestPath) {
		return File{}, fmt.Errorf("--file %q: the guest path must be absolute", s)
	}
	return File{Host: host, Guest: path.Clean(guestPath)}, nil
}

// Initramfs describes the guest's root file system.
type Initramfs struct {
	// Init is the guest's init: a static graft binary (or any program whose
	// main calls guest.Main when guest.IsInit). It becomes /init and
	// /bin/graft.
	Init string
	// Busybox is a static busybox; its applets are installed in /bin at boot.
	Busybox string
	// Files are copied to their guest paths: a file, or a directory with
	// everything below it.
	Files []File
}

// write writes the archive, with cfg for the guest init (newc cpio,
// uncompressed: the kernel unpacks it faster than it would decompress it
// under TCG).
func (ir *Initramfs) write(name string, cfg guest.Config) error {
	recs, err := ir.records(cfg)
	if err != nil {
		return err
	}
	f, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("write initramfs: %w", err)
	}
	w := cpio.Newc.Writer(f)
	err = cpio.WriteRecordsAndDirs(w, recs)
	if err == nil {
		err = cpio.WriteTrailer(w)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write initramfs %s: %w", name, err)
	}
	return nil
}

func (ir *Initramfs) records(gcfg guest.Config) ([]cpio.Record, error) {
	cfg, err := gcfg.Marshal()
	if err != nil {
		return nil, fmt.Errorf("initramfs: %w", err)
	}
	files := map[string]cpio.Record{}
	add := func(hostPath, guestPath string, mode os.FileMode) error {
		b, err := readFile(hostPath, guestPath)
		if err != nil {
			return err
		}
		if mode == 0 {
			st, err := os.Stat(hostPath)
			if err != nil {
				return fmt.Errorf("%w: %s", ErrFileNotFound, err)
			}
			mode = st.Mode().Perm()
		}
		files[strings.TrimPrefix(guestPath, "/")] = cpio.StaticRecord(b, cpio.Info{
			Name: strings.TrimPrefix(guestPath, "/"),
			Mode: cpio.S_IFREG | uint64(mode.Perm()),
		})
		return nil
	}
	if ir.Init == "" {
		return nil, fmt.Errorf("initramfs: no init binary")
	}
	if err := add(ir.Init, "/bin/graft", 0o755); err != nil {
		return nil, err
	}
	if ir.Busybox != "" {
		if err := add(ir.Busybox, "/bin/busybox", 0o755); err != nil {
			return nil, err
		}
	}
	for _, f := range ir.Files {
		st, err := os.Stat(f.Host)
		if err != nil {
			return nil, fmt.Errorf("%w: %s", ErrFileNotFound, err)
		}
		if !st.IsDir() {
			if err := add(f.Host, f.Guest, f.Mode); err != nil {
				return nil, err
			}
			continue
		}
		// A directory goes in with everything below it.
		err = filepath.WalkDir(f.Host, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !d.Type().IsRegular() {
				return err
			}
			rel, err := filepath.Rel(f.Host, p)
			if err != nil {
				return err
			}
			return add(p, path.Join(f.Guest, filepath.ToSlash(rel)), f.Mode)
		})
		if err != nil {
			return nil, err
		}
	}
	// Dynamically linked executables (a test binary built with cgo, say)
	// need their loader and libraries.
	var bins []string
	bins = append(bins, ir.Init)
	for _, f := range ir.Files {
		if st, err := os.Stat(f.Host); err == nil && !st.IsDir() {
			bins = append(bins, f.Host)
		}
	}
	for _, b := range bins {
		libs, err := sharedLibs(b)
		if err != nil {
			return nil, err
		}
		for _, l := range libs {
			if err := add(l, l, 0); err != nil {
				return nil, err
			}
		}
	}

	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	recs := []cpio.Record{
		cpio.Directory("dev", 0o755),
		cpio.CharDev("dev/console", 0o600, 5, 1),
		cpio.Directory("proc", 0o755),
		cpio.Directory("sys", 0o755),
		cpio.Directory("tmp", 0o1777),
		cpio.Directory("bin", 0o755),
		cpio.Symlink("init", "bin/graft"),
		cpio.StaticFile(strings.TrimPrefix(guest.ConfigPath, "/"), string(cfg), 0o644),
	}
	for _, n := range names {
		recs = append(recs, files[n])
	}
	return recs, nil
}

// readFile reads a file for the guest. A compressed kernel module that goes
// to a plain .ko path (see Modules) is decompressed: the guest loads it
// with finit_module, which takes compressed modules only where the kernel
// was built to decompress them.
func readFile(hostPath, guestPath string) ([]byte, error) {
	if _, module := moduleFileName(path.Base(hostPath)); module && !strings.HasSuffix(hostPath, ".ko") && strings.HasSuffix(guestPath, ".ko") {
		b, err := kmod.ReadFile(hostPath)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrFileNotFound, err)
		}
		return b, err
	}
	b, err := os.ReadFile(hostPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrFileNotFound, err)
	}
	return b, nil
}

// sharedLibs lists the shared libraries (and the dynamic loader) that an ELF
// executable needs, by asking ldd. Static binaries and non-ELF files need
// none.
func sharedLibs(name string) ([]string, error) {
	f, err := elf.Open(name)
	if err != nil {
		return nil, nil
	}
	defer f.Close()
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return nil, nil
	}
	dynamic := false
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			dynamic = true
		}
	}
	if !dynamic {
		return nil, nil
	}
	out, err := exec.Command("ldd", name).Output()
	if err != nil {
		return nil, fmt.Errorf("%s is dynamically linked and ldd failed: %w (build it with CGO_ENABLED=0)", name, err)
	}
	var libs []string
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		for _, field := range strings.Fields(sc.Text()) {
			if strings.HasPrefix(field, "/") {
				libs = append(libs, field)
			}
		}
	}
	return libs, nil
}
