package elfobj

import (
	"debug/elf"
	"sort"
)

// PCRelative reports relocation types whose field holds an address
// relative to the field itself.
func PCRelative(t elf.R_X86_64) bool {
	switch t {
	case elf.R_X86_64_PC32, elf.R_X86_64_PLT32, elf.R_X86_64_GOTPCREL, elf.R_X86_64_GOTPCRELX,
		elf.R_X86_64_REX_GOTPCRELX, elf.R_X86_64_PC64:
		return true
	}
	return false
}

// FieldSize is the size in bytes of the field a relocation writes.
func FieldSize(t elf.R_X86_64) uint64 {
	switch t {
	case elf.R_X86_64_64, elf.R_X86_64_PC64:
		return 8
	case elf.R_X86_64_NONE:
		return 0
	}
	return 4
}

// Location is where a relocation points: an offset in a section, and the
// function or data symbol that covers it, if one does.
type Location struct {
	Section *Section
	Offset  int64
	// Symbol covers Offset; nil for data without a symbol of its own
	// (string literals, constants) or a relocation against an undefined
	// symbol.
	Symbol *Symbol
}

// Resolver finds where relocations point. Relocations against a named
// symbol point there; those against a section symbol (as the assembler
// writes them for static functions and data) point into the section at the
// addend, which for a PC-relative field in an instruction is biased by the
// rest of the instruction: 4 bytes of the field itself and up to 4 of an
// immediate operand after it (cmpb $0, x(%rip) has one). Of those
// positions, the first that a function or data symbol covers, or where a
// label (a symbol without a type) sits, is the target.
type Resolver struct {
	symbols map[*Section][]*Symbol // functions and data by value
	labels  map[*Section][]*Symbol // named symbols without a type
}

// NewResolver indexes the symbols of f.
func NewResolver(f *File) *Resolver {
	r := &Resolver{symbols: map[*Section][]*Symbol{}, labels: map[*Section][]*Symbol{}}
	for _, s := range f.Symbols {
		switch {
		case s.Section == nil || s.Name == "":
		case s.Type == elf.STT_FUNC || s.Type == elf.STT_OBJECT:
			r.symbols[s.Section] = append(r.symbols[s.Section], s)
		case s.Type == elf.STT_NOTYPE:
			r.labels[s.Section] = append(r.labels[s.Section], s)
		}
	}
	for _, m := range []map[*Section][]*Symbol{r.symbols, r.labels} {
		for _, syms := range m {
			sort.SliceStable(syms, func(i, j int) bool { return syms[i].Value < syms[j].Value })
		}
	}
	return r
}

// SymbolAt returns the function or data symbol of s that covers off (a
// symbol of size 0 covers only its own offset), or nil. Where no symbol
// covers off, one that ends there is returned: code that loops over an
// array refers to the address just past its end.
func (r *Resolver) SymbolAt(s *Section, off int64) *Symbol {
	var best, ending *Symbol
	for _, sym := range r.symbols[s] {
		if int64(sym.Value) > off {
			break
		}
		if off < int64(sym.Value+sym.Size) || sym.Size == 0 && off == int64(sym.Value) {
			best = sym
		}
		if sym.Size > 0 && int64(sym.Value+sym.Size) == off {
			ending = sym
		}
	}
	if best == nil {
		return ending
	}
	return best
}

func (r *Resolver) labelAt(s *Section, off int64) *Symbol {
	for _, l := range r.labels[s] {
		if int64(l.Value) == off {
			return l
		}
	}
	return nil
}

// Locate says where rel points. inCode says rel patches an instruction
// (it is in an executable section); in data, a PC-relative addend is the
// exact offset.
func (r *Resolver) Locate(rel Reloc, inCode bool) Location {
	sym := rel.Sym
	if sym == nil || sym.Section == nil {
		return Location{Symbol: sym, Offset: rel.Addend}
	}
	if sym.Type != elf.STT_SECTION {
		return Location{Section: sym.Section, Offset: int64(sym.Value) + rel.Addend, Symbol: sym}
	}
	pos := rel.Addend
	if !inCode || !PCRelative(rel.Type) {
		loc := Location{Section: sym.Section, Offset: pos, Symbol: r.SymbolAt(sym.Section, pos)}
		if loc.Symbol == nil {
			loc.Symbol = r.labelAt(sym.Section, pos)
		}
		return loc
	}
	for k := int64(4); k <= 8; k++ {
		if s := r.SymbolAt(sym.Section, pos+k); s != nil {
			return Location{Section: sym.Section, Offset: pos + k, Symbol: s}
		}
		if l := r.labelAt(sym.Section, pos+k); l != nil {
			return Location{Section: sym.Section, Offset: pos + k, Symbol: l}
		}
	}
	return Location{Section: sym.Section, Offset: pos + 4}
}

// ResolveSectionRelocs rewrites relocations that point at a section symbol
// plus an offset so that they point at the symbol Locate finds there, with
// the addend adjusted: S+A becomes X+(A-X.Value). The result links to the
// same addresses; what changes is that the relocation now names its
// target, so that it survives extracting X into another object.
// Relocations into data without symbols (strings, jump tables) are left
// alone. It returns how many were rewritten.
func (f *File) ResolveSectionRelocs() int {
	res := NewResolver(f)
	n := 0
	for _, rs := range f.Sections {
		inCode := rs.Info != nil && rs.Info.Flags&elf.SHF_EXECINSTR != 0
		for i := range rs.Relocs {
			r := &rs.Relocs[i]
			if r.Sym == nil || r.Sym.Type != elf.STT_SECTION || r.Sym.Section == nil {
				continue
			}
			loc := res.Locate(*r, inCode)
			if loc.Symbol == nil {
				continue
			}
			r.Addend -= int64(loc.Symbol.Value)
			r.Sym = loc.Symbol
			n++
		}
	}
	return n
}
