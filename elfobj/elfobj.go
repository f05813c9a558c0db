package elfobj

import (
	"debug/elf"
	"errors"
	"sort"
)

// Livepatch ELF extensions, Documentation/livepatch/module-elf-format.rst.
const (
	// SHN_LIVEPATCH marks symbols that the livepatch core resolves when the
	// patched object is loaded.
	SHN_LIVEPATCH elf.SectionIndex = 0xff20
	// SHF_RELA_LIVEPATCH marks .klp.rela sections.
	SHF_RELA_LIVEPATCH elf.SectionFlag = 0x00100000
)

// ErrNotRelocatable means the input is not an x86-64 ELF64 relocatable
// object.
var ErrNotRelocatable = errors.New("not an x86-64 ELF64 relocatable object")

// Header holds the ELF header fields that are copied through.
type Header struct {
	OSABI      elf.OSABI
	ABIVersion uint8
	Machine    elf.Machine
	Type       elf.Type
	Flags      uint32
}

// File is a mutable ELF64 relocatable. Sections[0] and Symbols[0] are the
// null entries.
type File struct {
	Header   Header
	Sections []*Section
	Symbols  []*Symbol
}

// Section is one section.
type Section struct {
	Name      string
	Type      elf.SectionType
	Flags     elf.SectionFlag
	Addr      uint64
	Addralign uint64
	Entsize   uint64
	// Data is the contents; nil for SHT_NOBITS (see Size). Write ignores it
	// for SHT_RELA, SHT_REL, SHT_GROUP and the tables it regenerates.
	Data []byte
	// Size is the size of a SHT_NOBITS section.
	Size uint64
	// Link is sh_link as a section (nil = 0).
	Link *Section
	// Info is the section that a relocation section applies to (sh_info).
	Info *Section
	// InfoRaw is sh_info when it is not a section index.
	InfoRaw uint32
	// Relocs are the relocations of a SHT_RELA or SHT_REL section.
	Relocs []Reloc
	// Group is the contents of a SHT_GROUP section.
	Group *Group
	// Symbol is the STT_SECTION symbol of this section, if any.
	Symbol *Symbol
	// Index is the position in File.Sections after Read or Write.
	Index int
}

// Group is a section group (COMDAT).
type Group struct {
	Flags   uint32
	Members []*Section
}

// Symbol is one symbol table entry.
type Symbol struct {
	Name  string
	Bind  elf.SymBind
	Type  elf.SymType
	Other uint8
	// Section is the defining section; nil when Shndx is special.
	Section *Section
	// Shndx is SHN_UNDEF, SHN_ABS, SHN_COMMON, SHN_LIVEPATCH, ... when
	// Section is nil.
	Shndx elf.SectionIndex
	Value uint64
	Size  uint64
	// Index is the position in File.Symbols after Read or Write.
	Index int
}

// Reloc is one relocation.
type Reloc struct {
	Offset uint64
	Type   elf.R_X86_64
	Sym    *Symbol
	Addend int64
}

// Section returns the first section called name, or nil.
func (f *File) Section(name string) *Section {
	for _, s := range f.Sections {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Symbol returns the first symbol called name, or nil.
func (f *File) Symbol(name string) *Symbol {
	for _, s := range f.Symbols {
		if s.Name == name && s.Type != elf.STT_SECTION {
			return s
		}
	}
	return nil
}

// RelaSections returns the relocation sections that apply to target.
func (f *File) RelaSections(target *Section) []*Section {
	var out []*Section
	for _, s := range f.Sections {
		if (s.Type == elf.SHT_RELA || s.Type == elf.SHT_REL) && s.Info == target {
			out = append(out, s)
		}
	}
	return out
}

// SymbolsIn returns the symbols defined in s, without its section symbol,
// sorted by value.
func (f *File) SymbolsIn(s *Section) []*Symbol {
	var out []*Symbol
	for _, sym := range f.Symbols {
		if sym.Section == s && sym.Type != elf.STT_SECTION {
			out = append(out, sym)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Value < out[j].Value })
	return out
}

// AddSection appends s and returns it.
func (f *File) AddSection(s *Section) *Section {
	f.Sections = append(f.Sections, s)
	return s
}

// AddSymbol appends s and returns it.
func (f *File) AddSymbol(s *Symbol) *Symbol {
	f.Symbols = append(f.Symbols, s)
	return s
}

// RemoveSections drops the sections for which drop returns true, with
// their relocation sections, their group memberships and the symbols
// defined in them. Relocations elsewhere that pointed at a dropped symbol
// are dropped too.
func (f *File) RemoveSections(drop func(*Section) bool) {
	gone := map[*Section]bool{}
	for i, s := range f.Sections {
		if i > 0 && drop(s) {
			gone[s] = true
		}
	}
	for _, s := range f.Sections {
		if s.Info != nil && gone[s.Info] && (s.Type == elf.SHT_RELA || s.Type == elf.SHT_REL) {
			gone[s] = true
		}
	}
	kept := f.Sections[:0]
	for _, s := range f.Sections {
		if !gone[s] {
			kept = append(kept, s)
		}
	}
	f.Sections = kept
	goneSym := map[*Symbol]bool{}
	syms := f.Symbols[:0]
	for i, sym := range f.Symbols {
		if i > 0 && sym.Section != nil && gone[sym.Section] {
			goneSym[sym] = true
			continue
		}
		syms = append(syms, sym)
	}
	f.Symbols = syms
	for _, s := range f.Sections {
		if s.Group != nil {
			members := s.Group.Members[:0]
			for _, m := range s.Group.Members {
				if !gone[m] {
					members = append(members, m)
				}
			}
			s.Group.Members = members
		}
		if len(goneSym) > 0 && len(s.Relocs) > 0 {
			relocs := s.Relocs[:0]
			for _, r := range s.Relocs {
				if !goneSym[r.Sym] {
					relocs = append(relocs, r)
				}
			}
			s.Relocs = relocs
		}
		if s.Link != nil && gone[s.Link] {
			s.Link = nil
		}
	}
}
