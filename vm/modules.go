package vm

import (
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"

	"github.com/graft-live/graft/kmod"
)

// Modules resolves kernel module names (as in lsmod: "vsock_loopback",
// dashes and underscores alike) to files in modulesDir (lib/modules/REL, as
// in Target.Kernel.ModulesDir), with the modules they depend on,
// dependencies first. The files go to /lib/modules in the guest (add them to
// Initramfs.Files); order lists their guest paths in load order, for
// Config.Modules; compressed modules go in decompressed. A name that is not
// there is ErrUnknownModule.
func Modules(modulesDir string, names []string) (files []File, order []string, err error) {
	if len(names) == 0 {
		return nil, nil, nil
	}
	index := map[string]string{}
	err = filepath.WalkDir(modulesDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if name, ok := moduleFileName(d.Name()); ok && !d.IsDir() {
			index[moduleName(name)] = p
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("index modules in %s: %w", modulesDir, err)
	}
	seen := map[string]bool{}
	var visit func(name string, chain []string) error
	visit = func(name string, chain []string) error {
		name = moduleName(name)
		if seen[name] {
			return nil
		}
		seen[name] = true
		p, ok := index[name]
		if !ok {
			if len(chain) > 0 {
				return fmt.Errorf("%w: %s (needed by %s) in %s", ErrUnknownModule, name, strings.Join(chain, " <- "), modulesDir)
			}
			return fmt.Errorf("%w: %s in %s", ErrUnknownModule, name, modulesDir)
		}
		deps, err := moduleDepends(p)
		if err != nil {
			return err
		}
		for _, d := range deps {
			if err := visit(d, append([]string{name}, chain...)); err != nil {
				return err
			}
		}
		guestPath := path.Join("/lib/modules", name+".ko")
		files = append(files, File{Host: p, Guest: guestPath})
		order = append(order, guestPath)
		return nil
	}
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return nil, nil, err
		}
	}
	return files, order, nil
}

func moduleName(s string) string { return strings.ReplaceAll(s, "-", "_") }

// moduleFileName returns the module name of a module file: plain (.ko) or
// compressed as Debian 13 and later ship them (.ko.xz, .ko.gz, .ko.zst).
func moduleFileName(file string) (string, bool) {
	for _, ext := range []string{".ko", ".ko.xz", ".ko.gz", ".ko.zst"} {
		if name, ok := strings.CutSuffix(file, ext); ok {
			return name, true
		}
	}
	return "", false
}

// moduleDepends reads the "depends=" entry of a module's modinfo.
func moduleDepends(ko string) ([]string, error) {
	data, err := kmod.ReadFile(ko)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ko, err)
	}
	m, err := kmod.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ko, err)
	}
	return m.Depends, nil
}
