package kernel

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/ulikunitz/xz"
)

// ModuleFile returns the path of the target's module name ("ext4",
// dashes and underscores alike) in its modules directory.
func (t *Target) ModuleFile(name string) (string, error) {
	if t.ModulesDir == "" {
		return "", fmt.Errorf("kernel %s: no modules (the image is not in the cache)", t.Release)
	}
	want := ModuleName(name)
	var found string
	err := filepath.WalkDir(t.ModulesDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.Contains(d.Name(), ".ko") && ModuleName(d.Name()) == want {
			found = p
			return fs.SkipAll
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("kernel %s: modules: %w", t.Release, err)
	}
	if found == "" {
		return "", fmt.Errorf("%w: %s in %s", ErrNoModule, name, t.ModulesDir)
	}
	return found, nil
}

// ReadModuleFile reads a module file, decompressing .ko.xz, .ko.gz and
// .ko.zst (zstd through the zstd command).
func ReadModuleFile(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r io.Reader
	switch {
	case strings.HasSuffix(path, ".xz"):
		r, err = xz.NewReader(bytes.NewReader(raw))
	case strings.HasSuffix(path, ".gz"):
		r, err = gzip.NewReader(bytes.NewReader(raw))
	case strings.HasSuffix(path, ".zst"):
		cmd := exec.Command("zstd", "-dcq")
		cmd.Stdin = bytes.NewReader(raw)
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("decompress %s with zstd: %w", path, err)
		}
		return out, nil
	default:
		return raw, nil
	}
	if err != nil {
		return nil, fmt.Errorf("decompress %s: %w", path, err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("decompress %s: %w", path, err)
	}
	return out, nil
}

// ModuleSymbols reads the symbols of the target's module name from the
// image's modules.
func (t *Target) ModuleSymbols(name string) (*Table, error) {
	p, err := t.ModuleFile(name)
	if err != nil {
		return nil, err
	}
	data, err := ReadModuleFile(p)
	if err != nil {
		return nil, err
	}
	return ReadModuleSymbols(ModuleName(name), data, p)
}

// VmlinuxSymbols reads the symbols of vmlinux: from the -dbg vmlinux when
// it is in the cache (fetching it if fetch is set: about 860 MB), else, for
// the running kernel, from /proc/kallsyms.
func (c *Cache) VmlinuxSymbols(ctx context.Context, t *Target, fetch bool) (*Table, error) {
	if t.Vmlinux == "" && fetch {
		nt, err := c.Resolve(ctx, Spec{Release: t.Release + "=" + t.Version}, Symbols, nil)
		if err != nil {
			return nil, err
		}
		t.Vmlinux, t.SystemMap, t.Parts = nt.Vmlinux, nt.SystemMap, t.Parts|Symbols
	}
	if t.Vmlinux != "" {
		return ReadVmlinuxSymbols(t.Vmlinux)
	}
	if t.Running {
		f, err := os.Open("/proc/kallsyms")
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNoSymbols, err)
		}
		defer f.Close()
		return ReadKallsyms(f, "/proc/kallsyms")
	}
	return nil, fmt.Errorf("%w: %s", ErrNoSymbols, t.Release)
}
