package klp

import (
	"debug/elf"
	"fmt"
	"sort"

	"github.com/graft-live/graft/elfobj"
)

// build lays the carried pieces and kept special entries out in a new
// object.
func (e *extractor) build() error {
	e.out = &elfobj.File{
		Header:   e.f.Header,
		Sections: []*elfobj.Section{{Type: elf.SHT_NULL}},
		Symbols:  []*elfobj.Symbol{{}},
	}
	// Output sections in the order of the input, for a stable result.
	for _, sec := range e.f.Sections {
		if ps := e.pieces[sec]; len(ps) > 0 {
			e.layoutPieces(sec, ps)
		}
	}
	e.addSymbols()
	extra, err := e.rewriteRuntimePtrs()
	if err != nil {
		return err
	}
	// The kept special entries are laid out before the code's relocations
	// are copied: code may refer to its own entry (entryRefs).
	var specials []*elfobj.Section
	for _, sec := range e.f.Sections {
		if sp := e.u.Layout.Special(sec.Name); sp != nil && len(e.kept[sec]) > 0 {
			if err := e.layoutSpecial(sec, sp); err != nil {
				return err
			}
			specials = append(specials, sec)
		}
	}
	for _, sec := range e.f.Sections {
		if ps := e.pieces[sec]; len(ps) > 0 {
			if err := e.copyRelocs(sec, ps, extra[e.outSec[sec]]); err != nil {
				return err
			}
		}
	}
	for _, sec := range specials {
		if err := e.specialRelocs(sec, e.u.Layout.Special(sec.Name)); err != nil {
			return err
		}
	}
	return nil
}

// layoutPieces makes the output section of sec from its carried pieces.
func (e *extractor) layoutPieces(sec *elfobj.Section, ps []*piece) {
	align := max(sec.Addralign, 1)
	o := &elfobj.Section{
		Name: sec.Name, Type: sec.Type, Flags: sec.Flags &^ elf.SHF_GROUP,
		Addralign: sec.Addralign, Entsize: sec.Entsize,
	}
	var size uint64
	for _, p := range ps {
		size = (size + align - 1) &^ (align - 1)
		p.out = size
		size += p.end - p.start
	}
	if sec.Type == elf.SHT_NOBITS {
		o.Size = size
	} else {
		o.Data = make([]byte, size)
		for _, p := range ps {
			copy(o.Data[p.out:], sec.Data[p.start:p.end])
		}
	}
	e.out.AddSection(o)
	o.Symbol = e.out.AddSymbol(&elfobj.Symbol{Type: elf.STT_SECTION, Bind: elf.STB_LOCAL, Section: o})
	e.outSec[sec] = o
}

// addSymbols copies the symbols defined in carried pieces. Replaced
// functions become local: the glue reaches them through aliases, and the
// module must not define a global of a kernel function's name.
func (e *extractor) addSymbols() {
	redirected := map[string]bool{}
	for _, r := range e.u.Redirects {
		redirected[r.Symbol] = true
	}
	for _, sym := range e.f.Symbols {
		if sym.Section == nil || sym.Type == elf.STT_SECTION || sym.Type == elf.STT_FILE {
			continue
		}
		p := e.pieceAt(sym.Section, int64(sym.Value), sym.Size == 0)
		if p == nil {
			continue
		}
		bind := sym.Bind
		if redirected[sym.Name] {
			bind = elf.STB_LOCAL
		}
		e.outSym[sym] = e.out.AddSymbol(&elfobj.Symbol{
			Name: sym.Name, Bind: bind, Type: sym.Type, Other: sym.Other,
			Section: e.outSec[sym.Section], Value: sym.Value - p.start + p.out, Size: sym.Size,
		})
	}
}

// copyRelocs copies the relocations of sec's carried pieces, and adds
// extra.
func (e *extractor) copyRelocs(sec *elfobj.Section, ps []*piece, extra []elfobj.Reloc) error {
	out := append([]elfobj.Reloc(nil), extra...)
	for _, p := range ps {
		for _, r := range e.relocsIn(sec, p.start, p.end) {
			nr, err := e.mapReloc(r, false)
			if err != nil {
				return fmt.Errorf("%s+%#x: %w", sec.Name, r.Offset, err)
			}
			nr.Offset = r.Offset - p.start + p.out
			out = append(out, nr)
		}
	}
	e.addRela(e.outSec[sec], out)
	return nil
}

// mapReloc points a relocation of carried bytes at the output's symbol for
// its target, or at the undefined symbol that reaches it.
func (e *extractor) mapReloc(r elfobj.Reloc, exact bool) (elfobj.Reloc, error) {
	sym := r.Sym
	switch {
	case sym == nil || sym.Index == 0 && sym.Name == "" && sym.Section == nil:
		return r, nil
	case sym.Section == nil && sym.Shndx == elf.SHN_ABS:
		r.Sym = e.absSymbol(sym)
		return r, nil
	case sym.Type == elf.STT_SECTION && e.u.Layout.Special(sym.Section.Name) != nil:
		// Code that names its own entry (checkEntryRefs made sure it is
		// kept).
		sp := e.u.Layout.Special(sym.Section.Name)
		pos := e.targetPos(r, exact)
		out, ok := e.keptEntry(sym.Section, sp, pos)
		if !ok || e.outSec[sym.Section] == nil {
			return r, fmt.Errorf("%w: reference to %s+%d, an entry the module does not keep", ErrUnsupported, sym.Section.Name, pos)
		}
		r.Sym = e.outSec[sym.Section].Symbol
		r.Addend += out - pos
		return r, nil
	case sym.Type == elf.STT_SECTION:
		p := e.pieceAt(sym.Section, e.targetPos(r, exact), true)
		if p == nil && len(e.pieces[sym.Section]) == 1 && len(e.bySection[sym.Section]) == 0 {
			p = e.pieces[sym.Section][0]
		}
		if p == nil {
			return r, fmt.Errorf("%w: reference to %s+%d is outside the carried code and data", ErrUnsupported, sym.Section.Name, r.Addend)
		}
		r.Sym = e.outSec[sym.Section].Symbol
		r.Addend += int64(p.out) - int64(p.start)
		return r, nil
	}
	if o, ok := e.outSym[sym]; ok {
		r.Sym = o
		return r, nil
	}
	ref, ok := e.refs[sym]
	if !ok {
		return r, fmt.Errorf("%w: %s is neither carried nor resolved", ErrUnsupported, sym.Name)
	}
	r.Sym = e.external(ref, sym)
	return r, nil
}

// external returns the undefined symbol that stands for ref.
func (e *extractor) external(ref Ref, sym *elfobj.Symbol) *elfobj.Symbol {
	name := ref.SymbolName()
	if s, ok := e.ext[name]; ok {
		return s
	}
	typ := sym.Type
	if typ == elf.STT_SECTION {
		typ = elf.STT_NOTYPE
	}
	s := e.out.AddSymbol(&elfobj.Symbol{Name: name, Bind: elf.STB_GLOBAL, Type: typ, Shndx: elf.SHN_UNDEF})
	e.ext[name] = s
	return s
}

func (e *extractor) absSymbol(sym *elfobj.Symbol) *elfobj.Symbol {
	if o, ok := e.outSym[sym]; ok {
		return o
	}
	o := e.out.AddSymbol(&elfobj.Symbol{Name: sym.Name, Bind: sym.Bind, Type: sym.Type, Shndx: elf.SHN_ABS, Value: sym.Value, Size: sym.Size})
	e.outSym[sym] = o
	return o
}

func (e *extractor) addRela(target *elfobj.Section, rs []elfobj.Reloc) {
	if len(rs) == 0 {
		return
	}
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Offset < rs[j].Offset })
	e.out.AddSection(&elfobj.Section{
		Name: ".rela" + target.Name, Type: elf.SHT_RELA, Flags: elf.SHF_INFO_LINK,
		Addralign: 8, Entsize: 24, Info: target, Relocs: rs,
	})
}

// layoutSpecial writes the kept entries of a special section (and of its
// parallel section); specialRelocs adds their relocations.
func (e *extractor) layoutSpecial(sec *elfobj.Section, sp *Special) error {
	kept := e.kept[sec]
	o := &elfobj.Section{Name: sec.Name, Type: sec.Type, Flags: sec.Flags &^ elf.SHF_GROUP, Addralign: sec.Addralign, Entsize: sec.Entsize}
	if sec.Flags&elf.SHF_LINK_ORDER != 0 {
		// Ordered with the code its entries belong to: the carried section
		// of the first kept entry (the assembler may have linked the
		// input's to another function's section).
		for _, r := range e.relocsIn(sec, uint64(kept[0]*sp.EntSize), uint64((kept[0]+1)*sp.EntSize)) {
			if r.Sym != nil && r.Sym.Section != nil && e.outSec[r.Sym.Section] != nil {
				o.Link = e.outSec[r.Sym.Section]
				break
			}
		}
		if o.Link == nil {
			return fmt.Errorf("%w: %s entries are ordered with code that is not carried", ErrUnsupported, sec.Name)
		}
	}
	o.Data = make([]byte, 0, len(kept)*sp.EntSize)
	for _, i := range kept {
		base := i * sp.EntSize
		o.Data = append(o.Data, sec.Data[base:base+sp.EntSize]...)
	}
	e.out.AddSection(o)
	o.Symbol = e.out.AddSymbol(&elfobj.Symbol{Type: elf.STT_SECTION, Bind: elf.STB_LOCAL, Section: o})
	e.outSec[sec] = o
	if sp.Parallel == "" {
		return nil
	}
	par := e.f.Section(sp.Parallel)
	if par == nil {
		return fmt.Errorf("%w: %s has no parallel section %s", ErrUnsupported, sec.Name, sp.Parallel)
	}
	if len(par.Data) != len(sec.Data)/sp.EntSize*sp.ParallelSize {
		return fmt.Errorf("%w: %s has %d bytes for %d entries of %s", ErrUnsupported, par.Name, len(par.Data), len(sec.Data)/sp.EntSize, sec.Name)
	}
	po := &elfobj.Section{Name: par.Name, Type: par.Type, Flags: par.Flags &^ elf.SHF_GROUP, Addralign: par.Addralign, Entsize: par.Entsize}
	for _, i := range kept {
		po.Data = append(po.Data, par.Data[i*sp.ParallelSize:(i+1)*sp.ParallelSize]...)
	}
	e.out.AddSection(po)
	return nil
}

func (e *extractor) specialRelocs(sec *elfobj.Section, sp *Special) error {
	var rs []elfobj.Reloc
	for n, i := range e.kept[sec] {
		base := uint64(i * sp.EntSize)
		for _, r := range e.relocsIn(sec, base, base+uint64(sp.EntSize)) {
			nr, err := e.mapReloc(r, true)
			if err != nil {
				return fmt.Errorf("%s entry %d: %w", sec.Name, i, err)
			}
			nr.Offset = r.Offset - base + uint64(n*sp.EntSize)
			rs = append(rs, nr)
		}
	}
	e.addRela(e.outSec[sec], rs)
	return nil
}

// aliases adds a global alias for each redirected function, which the
// glue names as the new function.
func (e *extractor) aliases() ([]Func, error) {
	var funcs []Func
	for i, r := range e.u.Redirects {
		sym := e.f.Symbol(r.Symbol)
		o, ok := e.outSym[sym]
		if sym == nil || !ok || sym.Type != elf.STT_FUNC {
			return nil, fmt.Errorf("redirected function %s is not a carried function", r.Symbol)
		}
		name := fmt.Sprintf("%s%d", e.u.Prefix, i)
		e.out.AddSymbol(&elfobj.Symbol{Name: name, Bind: elf.STB_GLOBAL, Type: elf.STT_FUNC, Section: o.Section, Value: o.Value, Size: o.Size})
		funcs = append(funcs, Func{Object: r.Object, OldName: r.OldName, Sympos: r.Sympos, New: name})
	}
	return funcs, nil
}
