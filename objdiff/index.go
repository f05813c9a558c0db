package objdiff

import (
	"bytes"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
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
	// res finds where relocations point.
	res *elfobj.Resolver
	// anchors are, for each data section, the offsets of its relocations
	// that point at code: where the entries of a table such as
	// __bug_table start.
	anchors map[*elfobj.Section][]int64

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

// uniqueID matches the names __UNIQUE_ID() makes (dynamic debug
// descriptors, __addressable): a prefix and a counter that changes when
// code is added above them; they are named like static locals, without
// the counter.
var uniqueID = regexp.MustCompile(`^(__UNIQUE_ID_[A-Za-z_]*?[A-Za-z_])[0-9]+$`)

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

// functionName returns the text of a __func__ (or __FUNCTION__,
// __PRETTY_FUNCTION__) array.
func functionName(s *elfobj.Symbol) (string, bool) {
	switch baseName(s.Name) {
	case "__func__", "__FUNCTION__", "__PRETTY_FUNCTION__":
	default:
		return "", false
	}
	if s.Section.Flags&elf.SHF_WRITE != 0 || s.Section.Type == elf.SHT_NOBITS {
		return "", false
	}
	start, end := extent(s)
	text, _, ok := bytes.Cut(s.Section.Data[start:end], []byte{0})
	return string(text), ok
}

func newIndex(f *elfobj.File) *index {
	ix := &index{
		f:        f,
		entities: map[string]*entity{},
		symKey:   map[*elfobj.Symbol]string{},
		relocs:   map[*elfobj.Section][]elfobj.Reloc{},
		ftrace:   map[*elfobj.Section]map[uint64]bool{},
		anon:     map[*elfobj.Section]string{},
		anchors:  map[*elfobj.Section][]int64{},

		res: elfobj.NewResolver(f),
	}
	for _, s := range f.Sections {
		if (s.Type == elf.SHT_RELA || s.Type == elf.SHT_REL) && s.Info != nil {
			ix.relocs[s.Info] = append(ix.relocs[s.Info], s.Relocs...)
		}
	}
	for sec, rs := range ix.relocs {
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].Offset < rs[j].Offset })
		ix.relocs[sec] = rs
		if sec.Flags&elf.SHF_EXECINSTR != 0 {
			continue
		}
		for _, r := range rs {
			if r.Sym.Section != nil && r.Sym.Section.Flags&elf.SHF_EXECINSTR != 0 {
				ix.anchors[sec] = append(ix.anchors[sec], int64(r.Offset))
			}
		}
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
		case s.Type == elf.STT_OBJECT && uniqueID.MatchString(s.Name):
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
		name := user + "::" + uniqueID.ReplaceAllString(baseName(s.Name), "$1")
		if text, ok := functionName(s); ok {
			// The name of a function, by its text: its number says only in
			// which order the compiler met the functions inlined here.
			name += "(" + text + ")"
		}
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
				if t := ix.res.Locate(r, true).Symbol; t != nil {
					if _, ok := users[t]; !ok {
						users[t] = baseName(fn.Name)
					}
				}
			}
		}
	}
	// What functions reach only through their data (the __func__ that a
	// dynamic debug descriptor points at) belongs to the function that
	// uses that data.
	var objects []*elfobj.Symbol
	for _, s := range ix.f.Symbols {
		if s.Type == elf.STT_OBJECT && s.Section != nil {
			objects = append(objects, s)
		}
	}
	sort.Slice(objects, func(i, j int) bool { return objects[i].Name < objects[j].Name })
	for changed := true; changed; {
		changed = false
		for _, d := range objects {
			user, ok := users[d]
			if !ok {
				continue
			}
			for _, r := range ix.relocsIn(d) {
				t := r.Sym
				if t.Type == elf.STT_SECTION && t.Section != nil {
					t = ix.res.Locate(r, false).Symbol
				}
				if _, ok := users[t]; t != nil && !ok {
					users[t] = user
					changed = true
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

// target describes what a relocation points at, independent of layout:
// a symbol by its entity, a string literal by its text, a constant by its
// bytes, an anonymous table by its contents.
func (ix *index) target(r elfobj.Reloc, inCode bool) string {
	sym := r.Sym
	if sym.Type != elf.STT_SECTION || sym.Section == nil {
		if isLabel(sym) {
			return ix.labelDesc(sym) + fmt.Sprintf("%+d", r.Addend)
		}
		return fmt.Sprintf("%s%+d", ix.symID(sym), r.Addend)
	}
	loc := ix.res.Locate(r, inCode)
	s, pos := loc.Section, loc.Offset
	if d, ok := stringAt(s, pos); ok {
		return d
	}
	if t := loc.Symbol; t != nil {
		if isLabel(t) {
			return ix.labelDesc(t) + fmt.Sprintf("+%d", pos-int64(t.Value))
		}
		return fmt.Sprintf("%s+%d", ix.symID(t), pos-int64(t.Value))
	}
	if d, ok := ix.entryDesc(s, pos); ok {
		return d
	}
	return fmt.Sprintf("anon %s+%d", ix.anonDesc(s), pos)
}

// stringAt describes a position in a string section by the string's text.
func stringAt(s *elfobj.Section, pos int64) (string, bool) {
	if s.Flags&elf.SHF_STRINGS == 0 || pos < 0 || pos > int64(len(s.Data)) {
		return "", false
	}
	start := bytes.LastIndexByte(s.Data[:pos], 0) + 1
	end := bytes.IndexByte(s.Data[pos:], 0)
	if end < 0 {
		end = len(s.Data) - int(pos)
	}
	return fmt.Sprintf("string %q+%d", s.Data[start:int(pos)+end], int(pos)-start), true
}

// entryDesc describes a reference to an entry of a table whose entries
// start with the address of code, as Linux 7's WARN passes its __bug_table
// entry: by what the entry refers to besides that code, not by its bytes,
// which hold a line number.
func (ix *index) entryDesc(s *elfobj.Section, pos int64) (string, bool) {
	anchors := ix.anchors[s]
	i := slices.Index(anchors, pos)
	if i < 0 {
		return "", false
	}
	end := int64(len(s.Data))
	if i+1 < len(anchors) {
		end = anchors[i+1]
	}
	var refs []string
	for _, r := range ix.relocs[s] {
		if off := int64(r.Offset); off > pos && off < end {
			refs = append(refs, fmt.Sprintf("%d: %s", off-pos, ix.target(r, false)))
		}
	}
	return fmt.Sprintf("entry of %s {%s}", s.Name, strings.Join(refs, ", ")), true
}

// isLabel reports a local symbol without a type in data, such as the
// .LC labels the assembler keeps for constants in mergeable sections: its
// number says nothing, its contents do.
func isLabel(s *elfobj.Symbol) bool {
	return s.Type == elf.STT_NOTYPE && s.Bind == elf.STB_LOCAL && s.Section != nil && s.Section.Flags&elf.SHF_EXECINSTR == 0 && strings.HasPrefix(s.Name, ".L")
}

// labelDesc describes a label by the bytes at it: a string in a string
// section, an entry of Entsize bytes in a mergeable one, else the rest of
// the section.
func (ix *index) labelDesc(s *elfobj.Symbol) string {
	sec := s.Section
	data := sec.Data
	if s.Value > uint64(len(data)) {
		return "label " + s.Name
	}
	b := data[s.Value:]
	switch {
	case sec.Flags&elf.SHF_STRINGS != 0:
		if end := bytes.IndexByte(b, 0); end >= 0 {
			b = b[:end]
		}
		return fmt.Sprintf("string %q", b)
	case sec.Flags&elf.SHF_MERGE != 0 && sec.Entsize > 0 && uint64(len(b)) >= sec.Entsize:
		b = b[:sec.Entsize]
	}
	return fmt.Sprintf("const %x", b)
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
	name := digitSuffix.ReplaceAllString(s.Name, "")
	data := append([]byte(nil), s.Data...)
	if strings.HasPrefix(s.Name, ubsanRecord) {
		// A UBSAN check's record: its file and type, without the line and
		// column that move with every change above it, nor the number.
		name, data = ubsanRecord, nil
	}
	for _, r := range ix.relocs[s] {
		zero(data, r.Offset, elfobj.FieldSize(r.Type))
		fmt.Fprintf(h, "%d %v %s\n", r.Offset, r.Type, ix.dataTarget(r))
	}
	h.Write(data)
	d := name + "#" + hex.EncodeToString(h.Sum(nil)[:6])
	ix.anon[s] = d
	return d
}

// ubsanRecord and ubsanType start the names of the sections that hold
// UBSAN's check records and the type descriptors they point at
// (-fdata-sections).
const (
	ubsanRecord = ".data..Lubsan_data"
	ubsanType   = ".data..Lubsan_type"
)

// dataTarget describes what a relocation in anonymous data points at: a
// string by its text and a UBSAN type descriptor by its contents (where
// they land, and their numbers, move with the others), else a section by
// its name or a symbol by its entity, with the addend.
func (ix *index) dataTarget(r elfobj.Reloc) string {
	sec := r.Sym.Section
	if r.Sym.Type != elf.STT_SECTION || sec == nil {
		return fmt.Sprintf("%s %d", ix.symID(r.Sym), r.Addend)
	}
	if d, ok := stringAt(sec, ix.res.Locate(r, false).Offset); ok {
		return d
	}
	if strings.HasPrefix(sec.Name, ubsanType) {
		return fmt.Sprintf("%s %x %d", ubsanType, sec.Data, r.Addend)
	}
	return fmt.Sprintf("%s %d", digitSuffix.ReplaceAllString(sec.Name, ""), r.Addend)
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
	code   []byte // contents with relocation fields zeroed
	relocs []reloc
	size   uint64
	nobits bool
}

// reloc is a relocation of a part, described so that two compilations
// compare equal when they refer to the same things at the same places.
type reloc struct {
	// Offset is relative to the part's symbol.
	Offset uint64
	Type   elf.R_X86_64
	// Target says what it points at (see index.target).
	Target string
	// Name is the symbol's name, for a relocation against a named symbol:
	// what a call instruction calls.
	Name string
}

func (ix *index) describe(s *elfobj.Symbol) part {
	p := part{sym: s, suffix: suffix(s.Name), size: s.Size}
	if s.Section.Type == elf.SHT_NOBITS {
		p.nobits = true
		return p
	}
	start, end := extent(s)
	p.code = append([]byte(nil), s.Section.Data[start:end]...)
	inCode := s.Section.Flags&elf.SHF_EXECINSTR != 0
	for _, r := range ix.relocsIn(s) {
		zero(p.code, r.Offset-start, elfobj.FieldSize(r.Type))
		rd := reloc{Offset: r.Offset - start, Type: r.Type, Target: ix.target(r, inCode)}
		if r.Sym.Type != elf.STT_SECTION {
			rd.Name = r.Sym.Name
		}
		p.relocs = append(p.relocs, rd)
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
