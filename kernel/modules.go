package kernel

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/graft-live/graft/kmod"
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

// ModuleSymbols reads the symbols of the target's module name from the
// image's modules.
func (t *Target) ModuleSymbols(name string) (*Table, error) {
	p, err := t.ModuleFile(name)
	if err != nil {
		return nil, err
	}
	data, err := kmod.ReadFile(p)
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
