// Package modinfo reads the .modinfo section of a kernel module: the
// NUL-separated key=value strings (name, vermagic, depends, livepatch, ...)
// that modinfo(8) prints.
package modinfo

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"strings"
)

// Parse decodes raw .modinfo contents. A key that appears more than once
// (alias=, parm=) keeps its values comma-separated.
func Parse(raw []byte) map[string]string {
	info := map[string]string{}
	for _, kv := range bytes.Split(raw, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			if prev, dup := info[k]; dup {
				v = prev + "," + v
			}
			info[k] = v
		}
	}
	return info
}

// Read returns the modinfo of the module in r. Malformed ELF yields an
// error, never a panic.
func Read(r io.ReaderAt) (info map[string]string, err error) {
	defer func() {
		// debug/elf can panic on malformed input.
		if p := recover(); p != nil {
			info, err = nil, fmt.Errorf("malformed ELF: %v", p)
		}
	}()
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s := f.Section(".modinfo")
	if s == nil {
		return nil, fmt.Errorf("no .modinfo section (not a kernel module)")
	}
	raw, err := s.Data()
	if err != nil {
		return nil, err
	}
	return Parse(raw), nil
}
