package elfobj

import (
	"debug/dwarf"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"strings"
)

// DWARF returns the debug information of the object, from the .debug_*
// sections Read kept, with their relocations applied in memory as a linker
// would (R_X86_64_64 and R_X86_64_32: in a relocatable object, a symbol's
// value is its offset in its section). The File is not changed.
func (f *File) DWARF() (d *dwarf.Data, err error) {
	defer func() {
		// debug/dwarf can panic on malformed input.
		if r := recover(); r != nil {
			d, err = nil, fmt.Errorf("malformed DWARF: %v", r)
		}
	}()
	sections := map[string][]byte{}
	for _, s := range f.Sections {
		name, ok := strings.CutPrefix(s.Name, ".debug_")
		if !ok || s.Type == elf.SHT_NOBITS {
			continue
		}
		data := append([]byte(nil), s.Data...)
		for _, rs := range f.RelaSections(s) {
			if err := applyDebugRelocs(data, rs); err != nil {
				return nil, fmt.Errorf("%s: %w", s.Name, err)
			}
		}
		sections[name] = data
	}
	if sections["info"] == nil {
		return nil, fmt.Errorf("no .debug_info")
	}
	d, err = dwarf.New(sections["abbrev"], nil, nil, sections["info"], sections["line"], nil, sections["ranges"], sections["str"])
	if err != nil {
		return nil, err
	}
	// DWARF 5 sections.
	for _, name := range []string{"addr", "line_str", "str_offsets", "rnglists", "loclists"} {
		if data, ok := sections[name]; ok {
			if err := d.AddSection(".debug_"+name, data); err != nil {
				return nil, err
			}
		}
	}
	return d, nil
}

// applyDebugRelocs applies the relocations of a debug section to a copy of
// its contents.
func applyDebugRelocs(data []byte, rs *Section) error {
	for _, r := range rs.Relocs {
		if r.Sym == nil {
			continue
		}
		v := int64(r.Sym.Value) + r.Addend
		switch r.Type {
		case elf.R_X86_64_64:
			if r.Offset+8 > uint64(len(data)) {
				return fmt.Errorf("relocation at %#x past the end", r.Offset)
			}
			binary.LittleEndian.PutUint64(data[r.Offset:], uint64(v))
		case elf.R_X86_64_32:
			if r.Offset+4 > uint64(len(data)) {
				return fmt.Errorf("relocation at %#x past the end", r.Offset)
			}
			binary.LittleEndian.PutUint32(data[r.Offset:], uint32(v))
		}
	}
	return nil
}
