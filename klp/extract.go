package klp

import (
	"debug/elf"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/graft-live/graft/elfobj"
)

// Ref is how a livepatch module reaches a symbol that it does not carry.
type Ref struct {
	// Object is where the symbol is: "vmlinux" or a module name.
	Object string `json:"object"`
	// Name is the symbol's name in that object.
	Name string `json:"name"`
	// Sympos tells duplicated local names apart: the n-th symbol of that
	// name in the object, 0 when the name is unique.
	Sympos int `json:"sympos"`
	// Extern means an exported symbol: the module refers to it by name and
	// the module loader resolves it. Otherwise the livepatch core resolves
	// it through a klp relocation.
	Extern bool `json:"extern,omitempty"`
}

// SymbolName is the name of the undefined symbol that stands for r in the
// module: the exported name, or the livepatch symbol
// ".klp.sym.OBJECT.NAME,SYMPOS".
func (r Ref) SymbolName() string {
	if r.Extern {
		return r.Name
	}
	return fmt.Sprintf("%s%s.%s,%d", klpSymPrefix, r.Object, r.Name, r.Sympos)
}

// klpSymPrefix starts the name of every livepatch symbol.
const klpSymPrefix = ".klp.sym."

// Resolver says how a livepatch module reaches a symbol of the patched
// object that it does not carry.
type Resolver interface {
	Resolve(sym *elfobj.Symbol) (Ref, error)
}

// Redirect asks for a function of the patched object to replace a function
// of the running kernel.
type Redirect struct {
	// Symbol is the function in the patched object.
	Symbol string
	// Object, OldName and Sympos name the function it replaces.
	Object  string
	OldName string
	Sympos  int
}

// Func is one function that a livepatch module replaces: an entry of the
// klp_func arrays of the glue.
type Func struct {
	Object  string `json:"object"`
	OldName string `json:"old_name"`
	Sympos  int    `json:"sympos"`
	// New is the global symbol of the new function in the module.
	New string `json:"new"`
}

// Unit is one patched translation unit to extract from.
type Unit struct {
	// Name names the unit in messages: "fs/proc/cmdline.o".
	Name string
	// Patched is the patched object, compiled with one section per
	// function and data object. Extract changes it (it resolves
	// relocations against section symbols).
	Patched *elfobj.File
	// Carry are the symbols the module carries: the changed and new
	// functions and the new data objects. What they need comes along.
	Carry []string
	// Redirects are the carried functions that replace running ones.
	Redirects []Redirect
	// Resolver reaches everything else.
	Resolver Resolver
	// Layout describes the target's special sections.
	Layout *Layout
	// Prefix starts the names of the global symbols Extract adds for the
	// glue; it must be unique among the units of one module ("graft0_").
	Prefix string
}

// Extracted is what Extract took out of a unit.
type Extracted struct {
	// Object is the new relocatable object.
	Object *elfobj.File
	// Funcs are the functions to replace, for the glue.
	Funcs []Func
	// Refs are the symbols the object reaches outside itself, sorted.
	Refs []Ref
	// Carried lists the symbols carried, sorted.
	Carried []string
	// Notes say what was left out and why.
	Notes []string
	// Warnings are what works differently in the new code than in the
	// old.
	Warnings []Warning
}

// Warning is something that works differently in the carried code.
type Warning struct {
	// ID is a stable short name: "static-key", "static-call".
	ID      string
	Message string
}

func (e *extractor) warn(id, msg string) {
	w := Warning{ID: id, Message: msg}
	if !slices.Contains(e.warnings, w) {
		e.warnings = append(e.warnings, w)
	}
}

// piece is a byte range of a section of the patched object that the module
// carries, and where it goes in the output section.
type piece struct {
	sec        *elfobj.Section
	start, end uint64
	out        uint64
}

type extractor struct {
	u         *Unit
	f         *elfobj.File
	pieces    map[*elfobj.Section][]*piece
	queue     []*piece
	bySection map[*elfobj.Section][]*elfobj.Symbol // functions and data objects
	relocs    map[*elfobj.Section][]elfobj.Reloc
	res       *elfobj.Resolver
	refs      map[*elfobj.Symbol]Ref
	kept      map[*elfobj.Section][]int // special section entries kept
	// entryRefs are the entries of special sections that carried code
	// refers to (the WARN of Linux 7 passes the address of its
	// __bug_table entry).
	entryRefs []entryRef
	notes     []string
	warnings  []Warning
	// runtimePtrs are the carried instructions with a runtime constant;
	// runtimeSyms the variables they load.
	runtimePtrs []runtimePtr
	runtimeSyms map[string]*elfobj.Symbol

	out    *elfobj.File
	outSec map[*elfobj.Section]*elfobj.Section
	outSym map[*elfobj.Symbol]*elfobj.Symbol
	ext    map[string]*elfobj.Symbol
}

// Extract takes the unit's functions and what they need out of its patched
// object into a new object, and reaches everything else through its
// Resolver. It fails (matching ErrUnsupported) when the object holds
// something the module cannot carry.
func Extract(u *Unit) (*Extracted, error) {
	e := &extractor{
		u: u, f: u.Patched,
		pieces:      map[*elfobj.Section][]*piece{},
		bySection:   map[*elfobj.Section][]*elfobj.Symbol{},
		relocs:      map[*elfobj.Section][]elfobj.Reloc{},
		refs:        map[*elfobj.Symbol]Ref{},
		runtimeSyms: map[string]*elfobj.Symbol{},
		kept:        map[*elfobj.Section][]int{},
		outSec:      map[*elfobj.Section]*elfobj.Section{},
		outSym:      map[*elfobj.Symbol]*elfobj.Symbol{},
		ext:         map[string]*elfobj.Symbol{},
	}
	e.f.ResolveSectionRelocs()
	e.res = elfobj.NewResolver(e.f)
	e.index()
	for _, name := range u.Carry {
		sym := e.f.Symbol(name)
		if sym == nil || sym.Section == nil {
			return nil, fmt.Errorf("klp %s: %s is not defined in the patched object", u.Name, name)
		}
		e.carry(sym)
	}
	if err := e.closure(); err != nil {
		return nil, fmt.Errorf("klp %s: %w", u.Name, err)
	}
	if err := e.checkEntryRefs(); err != nil {
		return nil, fmt.Errorf("klp %s: %w", u.Name, err)
	}
	if err := e.build(); err != nil {
		return nil, fmt.Errorf("klp %s: %w", u.Name, err)
	}
	funcs, err := e.aliases()
	if err != nil {
		return nil, fmt.Errorf("klp %s: %w", u.Name, err)
	}
	return &Extracted{Object: e.out, Funcs: funcs, Refs: e.refList(), Carried: e.carried(), Notes: slices.Compact(sortedCopy(e.notes)), Warnings: e.warnings}, nil
}

func (e *extractor) index() {
	for _, s := range e.f.Symbols {
		if s.Section != nil && (s.Type == elf.STT_FUNC || s.Type == elf.STT_OBJECT) {
			e.bySection[s.Section] = append(e.bySection[s.Section], s)
		}
	}
	for _, syms := range e.bySection {
		sort.SliceStable(syms, func(i, j int) bool { return syms[i].Value < syms[j].Value })
	}
	for _, s := range e.f.Sections {
		if (s.Type == elf.SHT_RELA || s.Type == elf.SHT_REL) && s.Info != nil {
			e.relocs[s.Info] = append(e.relocs[s.Info], s.Relocs...)
		}
	}
	for sec, rs := range e.relocs {
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].Offset < rs[j].Offset })
		e.relocs[sec] = rs
	}
}

func sectionSize(s *elfobj.Section) uint64 {
	if s.Type == elf.SHT_NOBITS {
		return s.Size
	}
	return uint64(len(s.Data))
}

// carry adds the piece of sym's section that holds sym: the whole section
// when sym has it to itself (one section per function or object), else
// sym's bytes.
func (e *extractor) carry(sym *elfobj.Symbol) {
	sec := sym.Section
	start, end := uint64(0), sectionSize(sec)
	for _, other := range e.bySection[sec] {
		if other.Value != sym.Value || other.Size != sym.Size {
			start, end = sym.Value, min(sym.Value+sym.Size, end)
			break
		}
	}
	e.addPiece(sec, start, end)
}

func (e *extractor) addPiece(sec *elfobj.Section, start, end uint64) {
	for _, p := range e.pieces[sec] {
		if start >= p.start && end <= p.end {
			return
		}
	}
	p := &piece{sec: sec, start: start, end: end}
	e.pieces[sec] = append(e.pieces[sec], p)
	sort.Slice(e.pieces[sec], func(i, j int) bool { return e.pieces[sec][i].start < e.pieces[sec][j].start })
	e.queue = append(e.queue, p)
}

// pieceAt returns the carried piece of sec that holds off; end says
// whether the end of a piece counts (an entry may mark where code ends).
func (e *extractor) pieceAt(sec *elfobj.Section, off int64, end bool) *piece {
	for _, p := range e.pieces[sec] {
		if off >= int64(p.start) && (off < int64(p.end) || end && off == int64(p.end) || p.start == p.end && off == int64(p.start)) {
			return p
		}
	}
	return nil
}

// closure carries what the carried pieces need and picks the special
// section entries that belong to them, until nothing new comes in.
func (e *extractor) closure() error {
	for {
		for len(e.queue) > 0 {
			p := e.queue[0]
			e.queue = e.queue[1:]
			for _, r := range e.relocsIn(p.sec, p.start, p.end) {
				if err := e.need(p.sec, r, false); err != nil {
					return err
				}
			}
		}
		if err := e.specials(); err != nil {
			return err
		}
		if len(e.queue) == 0 {
			return nil
		}
	}
}

func (e *extractor) relocsIn(sec *elfobj.Section, start, end uint64) []elfobj.Reloc {
	rs := e.relocs[sec]
	i := sort.Search(len(rs), func(i int) bool { return rs[i].Offset >= start })
	j := sort.Search(len(rs), func(i int) bool { return rs[i].Offset >= end })
	return rs[i:j]
}

// need handles one relocation of carried bytes in from: its target is
// carried, carried now, or reached from outside. exact says the relocation
// is in data, where a PC-relative addend has no instruction bias.
func (e *extractor) need(from *elfobj.Section, r elfobj.Reloc, exact bool) error {
	sym := r.Sym
	switch {
	case sym == nil || sym.Index == 0 && sym.Name == "":
		return nil // R_X86_64_NONE and the like
	case sym.Section == nil:
		if sym.Shndx == elf.SHN_ABS {
			return nil
		}
		return e.resolve(sym)
	case sym.Type == elf.STT_SECTION:
		return e.needSection(from, sym.Section, e.targetPos(r, exact))
	case e.pieceAt(sym.Section, int64(sym.Value), false) != nil:
		return nil
	case e.copyable(sym):
		e.carry(sym)
		return nil
	case sym.Type == elf.STT_NOTYPE && sym.Bind == elf.STB_LOCAL && sym.Section.Flags&(elf.SHF_WRITE|elf.SHF_EXECINSTR) == 0 && len(e.bySection[sym.Section]) == 0:
		// A local label in read-only data without objects (.LC constants
		// in mergeable sections): the constants come along.
		e.addPiece(sym.Section, 0, sectionSize(sym.Section))
		return nil
	}
	return e.resolve(sym)
}

// needSection handles a relocation against a section symbol: data without
// a symbol of its own (string literals, constants) or code (.altinstr_*).
func (e *extractor) needSection(from, sec *elfobj.Section, pos int64) error {
	if e.pieceAt(sec, pos, true) != nil || len(e.pieces[sec]) > 0 && len(e.bySection[sec]) == 0 {
		return nil
	}
	if why, ok := dropped(sec.Name); ok {
		return fmt.Errorf("%w: %s refers to %s (%s)", ErrUnsupported, from.Name, sec.Name, why)
	}
	if sp := e.u.Layout.Special(sec.Name); sp != nil {
		// Whether the entry is kept is known once the closure is complete.
		e.entryRefs = append(e.entryRefs, entryRef{from: from, sec: sec, sp: sp, pos: pos})
		return nil
	}
	if e.u.Layout.parallel(sec.Name) != nil {
		return fmt.Errorf("%w: %s refers to the special section %s", ErrUnsupported, from.Name, sec.Name)
	}
	if sec.Flags&elf.SHF_ALLOC == 0 {
		return fmt.Errorf("%w: %s refers to %s, which is not loaded", ErrUnsupported, from.Name, sec.Name)
	}
	if len(e.bySection[sec]) > 0 {
		return fmt.Errorf("%w: %s refers to %s at offset %d, where no symbol is", ErrUnsupported, from.Name, sec.Name, pos)
	}
	if sec.Flags&elf.SHF_WRITE != 0 && !strings.HasPrefix(sec.Name, ".data..Lubsan_") {
		// (UBSAN's data only records that a report was made.)
		e.notes = append(e.notes, fmt.Sprintf("%s: carries its own copy of the writable anonymous data in %s", from.Name, sec.Name))
	}
	e.addPiece(sec, 0, sectionSize(sec))
	return nil
}

// entryRef is a reference of carried code to an entry of a special
// section.
type entryRef struct {
	from, sec *elfobj.Section
	sp        *Special
	pos       int64
}

// checkEntryRefs makes sure that every special section entry that carried
// code refers to is kept, that is, belongs to carried code itself.
func (e *extractor) checkEntryRefs() error {
	for _, r := range e.entryRefs {
		if _, ok := e.keptEntry(r.sec, r.sp, r.pos); !ok {
			return fmt.Errorf("%w: %s refers to the %s entry at offset %d, which belongs to code the module does not carry", ErrUnsupported, r.from.Name, r.sec.Name, r.pos)
		}
	}
	return nil
}

// keptEntry returns where pos, an offset in the special section sec, is in
// the module's copy of sec.
func (e *extractor) keptEntry(sec *elfobj.Section, sp *Special, pos int64) (int64, bool) {
	if pos < 0 {
		return 0, false
	}
	i := int(pos) / sp.EntSize
	n := slices.Index(e.kept[sec], i)
	if n < 0 {
		return 0, false
	}
	return pos - int64(i*sp.EntSize) + int64(n*sp.EntSize), true
}

// targetPos is where a relocation points in its symbol's section; exact
// says it is in data (see elfobj.Resolver).
func (e *extractor) targetPos(r elfobj.Reloc, exact bool) int64 {
	return e.res.Locate(r, !exact).Offset
}

// copyable reports data that the module carries a copy of rather than
// reaching the running kernel's: dynamic debug descriptors (the new code
// gets its own, registered with the module) and read-only constants the
// compiler generates (__func__, switch tables).
func (e *extractor) copyable(sym *elfobj.Symbol) bool {
	if sym.Type != elf.STT_OBJECT {
		return false
	}
	if strings.HasPrefix(sym.Section.Name, "__dyndbg") {
		return true
	}
	if sym.Section.Flags&elf.SHF_WRITE != 0 || sym.Bind != elf.STB_LOCAL {
		return false
	}
	base, _, _ := strings.Cut(sym.Name, ".")
	switch base {
	case "__func__", "__FUNCTION__", "__PRETTY_FUNCTION__", "CSWTCH":
		return true
	}
	return false
}

func (e *extractor) resolve(sym *elfobj.Symbol) error {
	if _, ok := e.refs[sym]; ok {
		return nil
	}
	if sym.Section != nil {
		switch {
		case strings.HasPrefix(sym.Section.Name, ".init.") || strings.HasPrefix(sym.Section.Name, ".exit."):
			return fmt.Errorf("%w: the new code refers to %s in %s, which the kernel frees after boot", ErrUnsupported, sym.Name, sym.Section.Name)
		}
	}
	ref, err := e.u.Resolver.Resolve(sym)
	if errors.Is(err, ErrNoCounterpart) && sym.Type == elf.STT_OBJECT && sym.Bind == elf.STB_LOCAL && sym.Section != nil {
		// A constant's copy is the same constant; state starts over.
		if sym.Section.Flags&elf.SHF_WRITE != 0 {
			e.warn("static-local-copied", fmt.Sprintf("the static variable %s cannot be told apart from others of its name in the running kernel: the new code uses its own copy, which starts from its initial value (a ratelimit state or a once flag starts over)", sym.Name))
		}
		e.carry(sym)
		return nil
	}
	if err != nil {
		return err
	}
	e.refs[sym] = ref
	return nil
}

// specials picks the entries of the special sections whose anchor is in
// carried code, and makes sure what those entries refer to is reachable.
func (e *extractor) specials() error {
	for _, sec := range e.f.Sections {
		sp := e.u.Layout.Special(sec.Name)
		if isRuntimeSection(sec.Name) {
			if err := e.runtimeConstants(sec); err != nil {
				return err
			}
			continue
		}
		if sp == nil {
			if err := e.checkUnknown(sec); err != nil {
				return err
			}
			continue
		}
		size := sectionSize(sec)
		if size%uint64(sp.EntSize) != 0 {
			return fmt.Errorf("%w: %s is %d bytes, not a multiple of its entry size %d", ErrUnsupported, sec.Name, size, sp.EntSize)
		}
		var kept []int
		for i := 0; i < int(size)/sp.EntSize; i++ {
			base := uint64(i * sp.EntSize)
			entry := e.relocsIn(sec, base, base+uint64(sp.EntSize))
			anchor := -1
			for k, r := range entry {
				if r.Offset == base+uint64(sp.Anchor) {
					anchor = k
				}
			}
			if anchor < 0 || !e.anchored(entry[anchor]) {
				continue
			}
			late, lateName := "", ""
			for k, r := range entry {
				if k == anchor {
					continue
				}
				if err := e.need(sec, r, true); err != nil {
					return err
				}
				if ref, ok := e.refs[r.Sym]; ok && !ref.Extern && ref.Object != "vmlinux" {
					late, lateName = fmt.Sprintf("%s of %s", ref.Name, ref.Object), ref.Name
				}
			}
			switch {
			case late == "":
				kept = append(kept, i)
			case sec.Name == ".static_call_sites":
				// The call stays a call through the static call's
				// trampoline, which is correct, only not inlined.
				e.warn("static-call", fmt.Sprintf("the new code calls %s through its trampoline, not inline (the key is resolved only when the module loads)", late))
			case sec.Name == "__jump_table" && strings.HasPrefix(lateName, "__tracepoint_"):
				// A tracepoint's jump is compiled as a no-op, the tracepoint
				// disabled: without the entry it stays so in the new code.
				e.warn("static-key", fmt.Sprintf("tracepoint %s does not fire in the replaced functions (its static key is resolved only when the module loads)", late))
			default:
				return fmt.Errorf("%w: a %s entry of the new code refers to %s: the module loader sets up %s when the livepatch loads, but that symbol is resolved only when the module loads", ErrLateReference, sec.Name, late, sec.Name)
			}
		}
		e.kept[sec] = kept
	}
	return nil
}

// anchored reports whether an anchor relocation points into carried code.
// Special sections hold exact addresses: no PC-relative bias applies.
func (e *extractor) anchored(r elfobj.Reloc) bool {
	if r.Sym == nil || r.Sym.Section == nil {
		return false
	}
	return e.pieceAt(r.Sym.Section, e.targetPos(r, true), true) != nil
}

// checkUnknown refuses a section that graft does not know and that holds
// entries for carried code: leaving them out could break the new code.
// Sections with symbols of their own are data (tables of pointers, say),
// whose references to replaced functions reach the old function, which
// the livepatch redirects.
func (e *extractor) checkUnknown(sec *elfobj.Section) error {
	if len(e.pieces[sec]) > 0 || len(e.bySection[sec]) > 0 || e.u.Layout.parallel(sec.Name) != nil {
		return nil
	}
	if _, ok := dropped(sec.Name); ok {
		return nil
	}
	for _, r := range e.relocs[sec] {
		// Entries belong to code; data that points at carried data (the
		// file name string of UBSAN's records) does not.
		if r.Sym != nil && r.Sym.Section != nil && r.Sym.Section.Flags&elf.SHF_EXECINSTR != 0 && e.anchored(r) {
			return fmt.Errorf("%w: %s holds entries for the carried code, and graft does not know its format", ErrUnsupported, sec.Name)
		}
	}
	return nil
}

func (e *extractor) refList() []Ref {
	seen := map[string]Ref{}
	for _, r := range e.refs {
		seen[r.SymbolName()] = r
	}
	out := make([]Ref, 0, len(seen))
	for _, r := range seen {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SymbolName() < out[j].SymbolName() })
	return out
}

func sortedCopy(xs []string) []string {
	out := slices.Clone(xs)
	sort.Strings(out)
	return out
}

func (e *extractor) carried() []string {
	var out []string
	for sym := range e.outSym {
		if sym.Type == elf.STT_FUNC || sym.Type == elf.STT_OBJECT {
			out = append(out, sym.Name)
		}
	}
	sort.Strings(out)
	return out
}
