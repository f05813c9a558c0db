package klp

import (
	"debug/elf"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/graft-live/graft/elfobj"
)

// klpRelaPrefix starts the name of every klp relocation section.
const klpRelaPrefix = ".klp.rela."

// Conversion says what Convert did.
type Conversion struct {
	// Symbols are the livepatch symbols, by name.
	Symbols []string
	// Relocations counts the relocations moved into klp relocation
	// sections.
	Relocations int
	// Sections are the klp relocation sections.
	Sections []string
}

// Convert makes a linked livepatch module what the livepatch core reads:
// every undefined symbol named ".klp.sym.OBJECT.NAME,SYMPOS" becomes a
// livepatch symbol (SHN_LIVEPATCH), and every relocation against one moves
// into a klp relocation section ".klp.rela.OBJECT.SECTION"
// (SHF_RELA_LIVEPATCH), which the module loader leaves to the livepatch
// core: it applies the section when OBJECT is loaded. The linker cannot
// make either, so this runs on the linked module.
//
// Which OBJECT a relocation's section names: vmlinux for a symbol of
// vmlinux (applied when the livepatch loads); otherwise the object that
// the code holding the relocation patches, which objects maps from section
// names (a module's code may reach another module's symbols: its own
// section is applied when it loads, and its dependencies are loaded then).
// Sections that objects does not name use the symbol's object.
func Convert(f *elfobj.File, objects map[string]string) (*Conversion, error) {
	symtab := f.Section(".symtab")
	if symtab == nil || f.Section(".gnu.linkonce.this_module") == nil {
		return nil, fmt.Errorf("klp: convert: %w (no .symtab or .gnu.linkonce.this_module)", ErrNotLinked)
	}
	conv := &Conversion{}
	object := map[*elfobj.Symbol]string{}
	for _, s := range f.Symbols {
		if !strings.HasPrefix(s.Name, klpSymPrefix) {
			continue
		}
		obj, err := klpSymObject(s.Name)
		if err != nil {
			return nil, err
		}
		if s.Section != nil || (s.Shndx != elf.SHN_UNDEF && s.Shndx != elfobj.SHN_LIVEPATCH) {
			return nil, fmt.Errorf("klp: convert: %s is defined in the module; a livepatch symbol must be undefined", s.Name)
		}
		s.Shndx, s.Value, s.Size = elfobj.SHN_LIVEPATCH, 0, 0
		object[s] = obj
		conv.Symbols = append(conv.Symbols, s.Name)
	}
	sort.Strings(conv.Symbols)
	klpSecs := map[string]*elfobj.Section{}
	for _, s := range f.Sections {
		if strings.HasPrefix(s.Name, klpRelaPrefix) {
			klpSecs[s.Name] = s
		}
	}
	for _, rs := range append([]*elfobj.Section(nil), f.Sections...) {
		if rs.Type != elf.SHT_RELA || rs.Flags&elfobj.SHF_RELA_LIVEPATCH != 0 || rs.Info == nil {
			continue
		}
		kept := rs.Relocs[:0]
		for _, r := range rs.Relocs {
			obj, ok := object[r.Sym]
			if !ok {
				kept = append(kept, r)
				continue
			}
			if o, ok := objects[rs.Info.Name]; ok && obj != "vmlinux" {
				obj = o
			}
			name := klpRelaPrefix + obj + "." + rs.Info.Name
			ks := klpSecs[name]
			if ks == nil {
				ks = f.AddSection(&elfobj.Section{
					Name: name, Type: elf.SHT_RELA,
					Flags:     elf.SHF_ALLOC | elf.SHF_INFO_LINK | elfobj.SHF_RELA_LIVEPATCH,
					Addralign: 8, Entsize: 24, Link: symtab, Info: rs.Info,
				})
				klpSecs[name] = ks
				conv.Sections = append(conv.Sections, name)
			}
			ks.Relocs = append(ks.Relocs, r)
			conv.Relocations++
		}
		rs.Relocs = kept
	}
	for _, s := range f.Sections {
		if s.Type != elf.SHT_REL {
			continue
		}
		for _, r := range s.Relocs {
			if _, ok := object[r.Sym]; ok {
				return nil, fmt.Errorf("klp: convert: %s has a REL relocation against %s; livepatch needs RELA", s.Name, r.Sym.Name)
			}
		}
	}
	// Relocation sections left empty go.
	f.RemoveSections(func(s *elfobj.Section) bool {
		return s.Type == elf.SHT_RELA && len(s.Relocs) == 0 && s.Flags&elfobj.SHF_RELA_LIVEPATCH == 0 && s.Info != nil
	})
	sort.Strings(conv.Sections)
	return conv, nil
}

// klpSymObject returns OBJECT of ".klp.sym.OBJECT.NAME,SYMPOS", checking the
// format the livepatch core parses.
func klpSymObject(name string) (string, error) {
	rest := strings.TrimPrefix(name, klpSymPrefix)
	obj, sym, ok := strings.Cut(rest, ".")
	bad := func(why string) error {
		return fmt.Errorf("klp: convert: livepatch symbol %q %s (want .klp.sym.OBJECT.NAME,SYMPOS)", name, why)
	}
	if !ok || obj == "" || len(obj) > 55 {
		return "", bad("has no object name")
	}
	i := strings.LastIndexByte(sym, ',')
	if i <= 0 {
		return "", bad("has no sympos")
	}
	if _, err := strconv.ParseUint(sym[i+1:], 10, 32); err != nil {
		return "", bad("has a bad sympos")
	}
	if len(sym[:i]) > 511 {
		return "", bad("has a name longer than the livepatch core reads")
	}
	return obj, nil
}
