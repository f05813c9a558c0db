package kernel

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"strings"
)

// Export is a symbol that vmlinux or a module exports (EXPORT_SYMBOL*).
type Export struct {
	Name string `json:"name"`
	// Module is "vmlinux" or the name of the exporting module ("ext4").
	Module string `json:"module"`
	// GPL says the symbol is exported with EXPORT_SYMBOL_GPL.
	GPL bool `json:"gpl,omitempty"`
	// Namespace is the symbol namespace (EXPORT_SYMBOL_NS), if any; a
	// module using it must import the namespace.
	Namespace string `json:"namespace,omitempty"`
}

// Exports are the exported symbols of a kernel by name.
type Exports map[string]Export

// ReadExports reads a Module.symvers: lines of
// "CRC<TAB>symbol<TAB>module<TAB>export type<TAB>namespace".
func ReadExports(file string) (Exports, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("exports: %w", err)
	}
	defer f.Close()
	ex := Exports{}
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) < 4 {
			if strings.TrimSpace(sc.Text()) == "" {
				continue
			}
			return nil, fmt.Errorf("exports %s:%d: want at least 4 tab-separated fields, got %q", file, n, sc.Text())
		}
		e := Export{Name: fields[1], Module: ModuleName(fields[2]), GPL: strings.HasSuffix(fields[3], "_GPL")}
		if len(fields) > 4 {
			e.Namespace = fields[4]
		}
		ex[e.Name] = e
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("exports %s: %w", file, err)
	}
	return ex, nil
}

// ReadExports reads the target's Module.symvers.
func (t *Target) ReadExports() (Exports, error) {
	if t.ModuleSymvers() == "" {
		return nil, fmt.Errorf("kernel %s: no Module.symvers (the headers are not in the cache)", t.Release)
	}
	return ReadExports(t.ModuleSymvers())
}

// ModuleName turns a module path or file name ("fs/ext4/ext4",
// "snd-hda-intel.ko.xz") into the name the kernel knows it by
// ("snd_hda_intel").
func ModuleName(s string) string {
	s = path.Base(s)
	for _, ext := range []string{".xz", ".zst", ".gz", ".ko", ".o"} {
		s = strings.TrimSuffix(s, ext)
	}
	return strings.ReplaceAll(s, "-", "_")
}
