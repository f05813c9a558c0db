package objdiff

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/graft-live/graft/elfobj"
)

// entity is a function with its clones and pieces, or a data object.
type entity struct {
	key  string // kind-qualified: "function:foo", "object:fn::counter"
	name string // as reported: "foo", "fn::counter"
	kind Kind
	syms []*elfobj.Symbol // sorted by name
}

// index is one object file prepared for comparison.
type index struct {
	f        *elfobj.File
	entities map[string]*entity
	symKey   map[*elfobj.Symbol]string
	relocs   map[*elfobj.Section][]elfobj.Reloc
	ftrace   map[*elfobj.Section]map[uint64]bool // ftrace entry locations
	// bySection lists the function and object symbols of each section by
	// value.
	bySection map[*elfobj.Section][]*elfobj.Symbol

	mu   sync.Mutex // guards anon
	anon map[*elfobj.Section]string
}

// skipSection reports sections whose symbols are not functions or data of
// the translation unit: metadata that the kernel build generates.
func skipSection(name string) bool {
	for _, p := range []string{".modinfo", "__ksymtab", ".discard", ".comment", ".note", ".debug", "__mcount_loc",
		"__patchable_function_entries", "__param", "__bug_table", "__ex_table", "__jump_table", ".altinstr", ".static_call",
		".retpoline_sites", ".return_sites", ".ibt_endbr_seal", ".orc_unwind", ".BTF", "___ksymtab", "__kcrctab", "__export_symbol"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

var digitSuffix = regexp.MustCompile(`\.[0-9]+`)

// baseName strips compiler suffixes: foo.isra.0 -> foo.
func baseName(name string) string {
	if i := strings.IndexByte(name, '.'); i > 0 {
		return name[:i]
	}
	return name
}

// suffix is what a symbol adds to its base, without numbers:
// foo.constprop.0.isra.0 -> ".constprop.isra".
func suffix(name string) string {
	return digitSuffix.ReplaceAllString(strings.TrimPrefix(name, baseName(name)), "")
}

// isStaticLocal reports a function-scope static (counter.3) or a compiler
// generated local object (__func__.7, CSWTCH.12).
func isStaticLocal(s *elfobj.Symbol) bool {
	return s.Bind == elf.STB_LOCAL && s.Type == elf.STT_OBJECT && strings.Contains(s.Name, ".") && baseName(s.Name) != s.Name
}

func newIndex(f *elfobj.File) *index {
	ix := &index{
		f:        f,
		entities: map[string]*entity{},
		symKey:   map[*elfobj.Symbol]string{},
		relocs:   map[*elfobj.Section][]elfobj.Reloc{},
		ftrace:   map[*elfobj.Section]map[uint64]bool{},
		anon:     map[*elfobj.Section]string{},

		bySection: map[*elfobj.Section][]*elfobj.Symbol{},
	}
	for _, s := range f.Symbols {
		if s.Section != nil && (s.Type == elf.STT_FUNC || s.Type == elf.STT_OBJECT) {
			ix.bySection[s.Section] = append(ix.bySection[s.Section], s)
		}
	}
	for _, syms := range ix.bySection {
		sort.SliceStable(syms, func(i, j int) bool { return syms[i].Value < syms[j].Value })
	}
	for _, s := range f.Sections {
		if (s.Type == elf.SHT_RELA || s.Type == elf.SHT_REL) && s.Info != nil {
			ix.relocs[s.Info] = append(ix.relocs[s.Info], s.Relocs...)
		}
	}
	for sec, rs := range ix.relocs {
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].Offset < rs[j].Offset })
		ix.relocs[sec] = rs
	}
	// Where ftrace can attach: the records the compiler keeps of each
	// __fentry__ call site (-mrecord-mcount) or patchable entry.
	for _, s := range f.Sections {
		if s.Info == nil || (s.Info.Name != "__mcount_loc" && s.Info.Name != "__patchable_function_entries") {
			continue
		}
		for _, r := range s.Relocs {
			if r.Sym.Section == nil {
				continue
			}
			at := r.Sym.Value + uint64(r.Addend)
			if ix.ftrace[r.Sym.Section] == nil {
				ix.ftrace[r.Sym.Section] = map[uint64]bool{}
			}
			ix.ftrace[r.Sym.Section][at] = true
		}
	}

	// Functions: every piece under its base name.
	var locals []*elfobj.Symbol
	for _, s := range f.Symbols {
		if s.Section == nil || skipSection(s.Section.Name) {
			continue
		}
		switch {
		case s.Type == elf.STT_FUNC:
			ix.add("function:"+baseName(s.Name), baseName(s.Name), Function, s)
		case s.Type == elf.STT_OBJECT && isStaticLocal(s):
			locals = append(locals, s)
		case s.Type == elf.STT_OBJECT:
			ix.add("object:"+s.Name, s.Name, Object, s)
		}
	}
	// Static locals: named after the function that uses them, since their
	// numbers change whenever another static is added before them.
	users := ix.users()
	seen := map[string]int{}
	for _, s := range locals {
		user := users[s]
		if user == "" {
			user = users[s.Section.Symbol]
		}
		name := user + "::" + baseName(s.Name)
		seen[name]++
		if n := seen[name]; n > 1 {
			name = fmt.Sprintf("%s#%d", name, n)
		}
		ix.add("object:"+name, name, Object, s)
	}
	for _, e := range ix.entities {
		sort.Slice(e.syms, func(i, j int) bool { return e.syms[i].Name < e.syms[j].Name })
	}
	return ix
}

func (ix *index) add(key, name string, kind Kind, s *elfobj.Symbol) {
	e := ix.entities[key]
	if e == nil {
		e = &entity{key: key, name: name, kind: kind}
		ix.entities[key] = e
	}
	e.syms = append(e.syms, s)
	ix.symKey[s] = key
}

// users maps each symbol referenced from a function to the first (by name)
// function base name that references it.
func (ix *index) users() map[*elfobj.Symbol]string {
	users := map[*elfobj.Symbol]string{}
	var funcs []*elfobj.Symbol
	for _, s := range ix.f.Symbols {
		if s.Type == elf.STT_FUNC && s.Section != nil {
			funcs = append(funcs, s)
		}
	}
	sort.Slice(funcs, func(i, j int) bool { return funcs[i].Name < funcs[j].Name })
	for _, fn := range funcs {
		for _, r := range ix.relocsIn(fn) {
			if _, ok := users[r.Sym]; !ok {
				users[r.Sym] = baseName(fn.Name)
			}
			// A reference through a section symbol names the objects there.
			if r.Sym.Type == elf.STT_SECTION && r.Sym.Section != nil {
				if t := ix.symbolAt(r.Sym.Section, targetPos(r)); t != nil {
					if _, ok := users[t]; !ok {
						users[t] = baseName(fn.Name)
					}
				}
			}
		}
	}
	return users
}

// extent is the byte range of a symbol in its section.
func extent(s *elfobj.Symbol) (uint64, uint64) {
	size := uint64(len(s.Section.Data))
	if s.Section.Type == elf.SHT_NOBITS {
		size = s.Section.Size
	}
	start, end := s.Value, s.Value+s.Size
	if s.Size == 0 || end > size {
		end = size
	}
	if start > end {
		start = end
	}
	return start, end
}

// relocsIn returns the relocations inside a symbol's extent.
func (ix *index) relocsIn(s *elfobj.Symbol) []elfobj.Reloc {
	start, end := extent(s)
	rs := ix.relocs[s.Section]
	i := sort.Search(len(rs), func(i int) bool { return rs[i].Offset >= start })
	j := sort.Search(len(rs), func(i int) bool { return rs[i].Offset >= end })
	return rs[i:j]
}

func pcRelative(t elf.R_X86_64) bool {
	switch t {
	case elf.R_X86_64_PC32, elf.R_X86_64_PLT32, elf.R_X86_64_GOTPCREL, elf.R_X86_64_GOTPCRELX, elf.R_X86_64_REX_GOTPCRELX, elf.R_X86_64_PC64:
		return true
	}
	return false
}

func relocWidth(t elf.R_X86_64) uint64 {
	switch t {
	case elf.R_X86_64_64, elf.R_X86_64_PC64:
		return 8
	}
	return 4
}

// targetPos is where a relocation through a section symbol points in that
// section. A PC-relative field sits 4 bytes before the end of (most)
// instructions, which the addend compensates for; the same code gives the
// same bias in both objects, so a consistent guess is enough.
func targetPos(r elfobj.Reloc) uint64 {
	pos := r.Addend
	if pcRelative(r.Type) {
		pos += 4
	}
	if pos < 0 {
		return 0
	}
	return uint64(pos)
}

// symbolAt returns the function or object symbol covering pos in s.
func (ix *index) symbolAt(s *elfobj.Section, pos uint64) *elfobj.Symbol {
	var best *elfobj.Symbol
	for _, sym := range ix.bySection[s] {
		if sym.Value > pos {
			break
		}
		if sym.Value <= pos && (pos < sym.Value+sym.Size || (sym.Size == 0 && pos == sym.Value)) {
			best = sym
		}
	}
	return best
}

// target describes what a relocation points at, independent of layout.
func (ix *index) target(r elfobj.Reloc) string {
	sym := r.Sym
	if sym.Type == elf.STT_SECTION && sym.Section != nil {
		s := sym.Section
		pos := targetPos(r)
		if s.Flags&elf.SHF_STRINGS != 0 && pos <= uint64(len(s.Data)) {
			start := bytes.LastIndexByte(s.Data[:pos], 0) + 1
			end := bytes.IndexByte(s.Data[pos:], 0)
			if end < 0 {
				end = len(s.Data) - int(pos)
			}
			return fmt.Sprintf("string %q+%d", s.Data[start:int(pos)+end], int(pos)-start)
		}
		if t := ix.symbolAt(s, pos); t != nil {
			return fmt.Sprintf("%s+%d", ix.symID(t), pos-t.Value)
		}
		return fmt.Sprintf("anon %s+%d", ix.anonDesc(s), pos)
	}
	return fmt.Sprintf("%s%+d", ix.symID(sym), r.Addend)
}

// symID names a symbol by its entity, keeping the clone suffix: a call to
// foo.isra.0 is not a call to foo.
func (ix *index) symID(s *elfobj.Symbol) string {
	if key, ok := ix.symKey[s]; ok {
		return key + suffix(s.Name)
	}
	if s.Section == nil {
		return "extern:" + s.Name
	}
	return "local:" + s.Name
}

// anonDesc describes a section without symbols (a jump table, say) by its
// contents, cached.
func (ix *index) anonDesc(s *elfobj.Section) string {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if d, ok := ix.anon[s]; ok {
		return d
	}
	h := sha256.New()
	data := append([]byte(nil), s.Data...)
	for _, r := range ix.relocs[s] {
		zero(data, r.Offset, relocWidth(r.Type))
		desc := ""
		if r.Sym.Type == elf.STT_SECTION && r.Sym.Section != nil {
			desc = digitSuffix.ReplaceAllString(r.Sym.Section.Name, "")
		} else {
			desc = ix.symID(r.Sym)
		}
		fmt.Fprintf(h, "%d %v %s %d\n", r.Offset, r.Type, desc, r.Addend)
	}
	h.Write(data)
	d := digitSuffix.ReplaceAllString(s.Name, "") + "#" + hex.EncodeToString(h.Sum(nil)[:6])
	ix.anon[s] = d
	return d
}

func zero(b []byte, off, n uint64) {
	for i := off; i < off+n && i < uint64(len(b)); i++ {
		b[i] = 0
	}
}

// part is one symbol of an entity, described for comparison.
type part struct {
	sym    *elfobj.Symbol
	suffix string
	code   []byte   // contents with relocation fields zeroed
	relocs []string // "offset type target", offsets relative to the symbol
	size   uint64
	nobits bool
}

func (ix *index) describe(s *elfobj.Symbol) part {
	p := part{sym: s, suffix: suffix(s.Name), size: s.Size}
	if s.Section.Type == elf.SHT_NOBITS {
		p.nobits = true
		return p
	}
	start, end := extent(s)
	p.code = append([]byte(nil), s.Section.Data[start:end]...)
	for _, r := range ix.relocsIn(s) {
		zero(p.code, r.Offset-start, relocWidth(r.Type))
		p.relocs = append(p.relocs, fmt.Sprintf("%d %v %s", r.Offset-start, r.Type, ix.target(r)))
	}
	return p
}

// hasFtraceEntry reports whether the function symbol s can be redirected by
// ftrace: a recorded __fentry__ site or patchable entry near its start, or
// a call to __fentry__ there.
func (ix *index) hasFtraceEntry(s *elfobj.Symbol) bool {
	for at := range ix.ftrace[s.Section] {
		if at >= s.Value && at < s.Value+16 {
			return true
		}
	}
	for _, r := range ix.relocsIn(s) {
		if r.Offset < s.Value+16 && (r.Sym.Name == "__fentry__" || r.Sym.Name == "mcount") {
			return true
		}
	}
	return false
}
