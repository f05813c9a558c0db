package kernel

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// SymKind is what a symbol names.
type SymKind uint8

// Symbol kinds.
const (
	KindOther SymKind = iota
	KindFunc
	KindObject
)

// Symbol is one symbol of a kernel object (vmlinux or a module).
type Symbol struct {
	Name string
	// Addr is the address (vmlinux) or the value in its section (module).
	Addr  uint64
	Size  uint64
	Kind  SymKind
	Local bool
	// Unit is the translation unit (index into Table.Units) the symbol
	// comes from, or -1 when the symbols do not say.
	Unit int
}

// Table is the symbol table of one kernel object, in the order the
// livepatch core searches it when it resolves a name and a sympos: address
// order for vmlinux (kallsyms), symbol table order for a module.
type Table struct {
	// Object is "vmlinux" or the module's name.
	Object string
	// Source says where the symbols were read from (a file, /proc/kallsyms),
	// for reports.
	Source string
	// Symbols are in lookup order.
	Symbols []Symbol
	// Units are the translation units' file names (STT_FILE symbols, such as
	// "cmdline.c"), when the symbols have them.
	Units []string
	// Blocks says the symbols are in a linked object's symbol table order
	// (a module's), where each object's locals form one block.
	Blocks bool

	byName map[string][]int
	// fo and foRank index the local functions and objects (aligned).
	fo     []int
	foRank map[int]int
}

func (t *Table) index() {
	t.byName = make(map[string][]int, len(t.Symbols))
	for i, s := range t.Symbols {
		t.byName[s.Name] = append(t.byName[s.Name], i)
	}
}

// Lookup returns the symbols called name, in lookup order.
func (t *Table) Lookup(name string) []Symbol {
	var out []Symbol
	for _, i := range t.byName[name] {
		out = append(out, t.Symbols[i])
	}
	return out
}

// HasUnits reports whether the table knows the translation unit of its
// local symbols.
func (t *Table) HasUnits() bool { return len(t.Units) > 0 }

// kallsymsIgnored reports names that scripts/kallsyms leaves out of the
// kernel's symbol table, so that they do not count towards a sympos.
func kallsymsIgnored(name string) bool {
	return name == "" || strings.HasPrefix(name, "$") || strings.HasPrefix(name, ".L") || strings.HasPrefix(name, "__crc_")
}

// ReadVmlinuxSymbols reads the symbol table of an unstripped vmlinux (the
// -dbg package's): every symbol that kallsyms would list, in address order,
// with the translation unit of each local symbol from the STT_FILE symbol
// that precedes it.
func ReadVmlinuxSymbols(path string) (t *Table, err error) {
	defer func() {
		if r := recover(); r != nil { // debug/elf can panic on malformed input
			t, err = nil, fmt.Errorf("symbols of %s: malformed ELF: %v", path, r)
		}
	}()
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("symbols: %w", err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return nil, fmt.Errorf("symbols of %s: %w", path, err)
	}
	t = &Table{Object: "vmlinux", Source: path}
	unit := -1
	for _, s := range syms {
		typ := elf.ST_TYPE(s.Info)
		bind := elf.ST_BIND(s.Info)
		switch {
		case typ == elf.STT_FILE:
			t.Units = append(t.Units, s.Name)
			unit = len(t.Units) - 1
			continue
		case typ == elf.STT_SECTION, s.Section == elf.SHN_UNDEF, kallsymsIgnored(s.Name):
			continue
		}
		sym := Symbol{Name: s.Name, Addr: s.Value, Size: s.Size, Kind: kindOf(typ), Local: bind == elf.STB_LOCAL, Unit: -1}
		if sym.Local {
			sym.Unit = unit
		}
		t.Symbols = append(t.Symbols, sym)
	}
	sort.SliceStable(t.Symbols, func(i, j int) bool { return t.Symbols[i].Addr < t.Symbols[j].Addr })
	t.index()
	return t, nil
}

// ReadKallsyms reads the vmlinux part of a /proc/kallsyms listing (module
// symbols are left out). Addresses must be visible (root, kptr_restrict).
func ReadKallsyms(r io.Reader, source string) (*Table, error) {
	t := &Table{Object: "vmlinux", Source: source}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	nonzero := false
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		if len(f) > 3 { // "[module]"
			continue
		}
		addr, err := strconv.ParseUint(f[0], 16, 64)
		if err != nil {
			return nil, fmt.Errorf("kallsyms %s: bad address in %q", source, sc.Text())
		}
		nonzero = nonzero || addr != 0
		typ := f[1]
		sym := Symbol{Name: f[2], Addr: addr, Unit: -1, Local: typ == strings.ToLower(typ)}
		switch strings.ToLower(typ) {
		case "t", "w":
			sym.Kind = KindFunc
		case "d", "b", "r", "v":
			sym.Kind = KindObject
		}
		t.Symbols = append(t.Symbols, sym)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("kallsyms %s: %w", source, err)
	}
	if len(t.Symbols) == 0 || !nonzero {
		return nil, fmt.Errorf("%w: %s lists no addresses (run as root)", ErrNoSymbols, source)
	}
	t.index()
	return t, nil
}

// ReadModuleSymbols reads the symbol table of a module file (.ko, possibly
// compressed: see kmod.ReadFile) in symbol table order, as the kernel
// searches a loaded module. Symbols of sections that are not loaded are
// left out.
func ReadModuleSymbols(name string, data []byte, source string) (t *Table, err error) {
	defer func() {
		if r := recover(); r != nil {
			t, err = nil, fmt.Errorf("symbols of %s: malformed ELF: %v", source, r)
		}
	}()
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("symbols of %s: %w", source, err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return nil, fmt.Errorf("symbols of %s: %w", source, err)
	}
	t = &Table{Object: name, Source: source, Blocks: true}
	unit := -1
	for _, s := range syms {
		typ := elf.ST_TYPE(s.Info)
		if typ == elf.STT_FILE {
			t.Units = append(t.Units, s.Name)
			unit = len(t.Units) - 1
			continue
		}
		if typ == elf.STT_SECTION || s.Section == elf.SHN_UNDEF || s.Name == "" {
			continue
		}
		if int(s.Section) < len(f.Sections) && f.Sections[s.Section].Flags&elf.SHF_ALLOC == 0 {
			continue
		}
		sym := Symbol{Name: s.Name, Addr: s.Value, Size: s.Size, Kind: kindOf(typ), Local: elf.ST_BIND(s.Info) == elf.STB_LOCAL, Unit: -1}
		if sym.Local {
			sym.Unit = unit
		}
		t.Symbols = append(t.Symbols, sym)
	}
	t.index()
	return t, nil
}

func kindOf(t elf.SymType) SymKind {
	switch t {
	case elf.STT_FUNC:
		return KindFunc
	case elf.STT_OBJECT, elf.STT_TLS:
		return KindObject
	}
	return KindOther
}

// Unit is one translation unit's place in a Table: which occurrence of a
// duplicated local name is its own.
type Unit struct {
	t      *Table
	file   string
	units  map[int]bool // candidate STT_FILE groups, when the table has them
	locals map[string]bool
	// ordered are the unit's local names in its symbol table's order.
	ordered []string
}

// Ordered gives the unit's local function and object names in the order
// its object's symbol table lists them, numbered statics (_rs.9,
// __func__.3) included, symbols the link discards left out. Without
// translation units in the table they decide between occurrences before
// the neighbourhood does: a linked module keeps each object's locals as
// one block in that order (checked against the STT_FILE symbols of
// Debian's debug modules), so the occurrence the whole block lines up with
// is the unit's.
func (u *Unit) Ordered(names []string) *Unit {
	u.ordered = names
	return u
}

// Locate finds the translation unit compiled from a source file whose base
// name is file ("cmdline.c") and whose object defines the local symbols
// locals (names as in the object compiled from the pristine source).
//
// With STT_FILE symbols, the unit is the file group of that name whose
// local symbols overlap locals most. Without them (kallsyms, stripped
// modules), each duplicated name is decided by its neighbourhood: the
// occurrence surrounded by most of locals in lookup order.
func (t *Table) Locate(file string, locals []string) *Unit {
	u := &Unit{t: t, file: file, locals: map[string]bool{}}
	for _, l := range locals {
		u.locals[l] = true
	}
	if !t.HasUnits() {
		return u
	}
	score := map[int]int{}
	for i, name := range t.Units {
		if name == file {
			score[i] = 0
		}
	}
	for name := range u.locals {
		for _, i := range t.byName[name] {
			s := t.Symbols[i]
			if _, ok := score[s.Unit]; ok && s.Local {
				score[s.Unit]++
			}
		}
	}
	best := -1
	for _, v := range score {
		best = max(best, v)
	}
	u.units = map[int]bool{}
	for i, v := range score {
		if v == best && best > 0 {
			u.units[i] = true
		}
	}
	return u
}

// Found reports whether Locate found the translation unit by its local
// symbols in a table with translation units.
func (u *Unit) Found() bool { return len(u.units) > 0 }

// neighbourhood is how many symbols on each side of an occurrence are
// looked at to tell duplicates apart without STT_FILE symbols.
const neighbourhood = 16

// Sympos returns the sympos the livepatch core needs to find the unit's
// symbol name (local says whether it is a local symbol in the unit's
// object): 0 when the name is unique in the table, else its 1-based
// position among the symbols of that name in lookup order.
func (u *Unit) Sympos(name string, local bool) (int, error) {
	idx := u.t.byName[name]
	if len(idx) == 0 {
		return 0, fmt.Errorf("%w: %s in %s (%s)", ErrSymbolNotFound, name, u.t.Object, u.t.Source)
	}
	mine := candidates(idx, u, local) // positions (among idx) that can be the unit's symbol
	if len(mine) == 0 {
		where := "only as a global symbol"
		if local {
			where = "only in other source files"
		}
		return 0, fmt.Errorf("%w: %s of %s in %s (%s): the name exists %s", ErrSymbolNotFound, name, u.file, u.t.Object, u.t.Source, where)
	}
	if len(mine) > 1 && local && u.units == nil {
		// Without translation units: the occurrence the unit's block of
		// locals lines up with, when one lines up with most of it; else
		// the neighbourhood decides.
		if p := slices.Index(u.ordered, name); p >= 0 && u.t.Blocks {
			// Alone: a neighbourhood that points elsewhere is wrong
			// more often than a block that lines up badly.
			mine = u.best(mine, func(pos int) int { return u.aligned(idx[pos], p) })
			if n := u.aligned(idx[mine[0]], p); len(mine) == 1 && 2*n <= len(u.ordered) {
				mine = nil // a weak match is no match
			}
		} else {
			mine = u.best(mine, func(pos int) int { return u.neighbours(idx[pos]) })
		}
	}
	if len(mine) > 1 {
		return 0, fmt.Errorf("%w: %s occurs %d times in %s (%s) and %d of them could be %s's", ErrAmbiguous, name, len(idx), u.t.Object, u.t.Source, len(mine), u.file)
	}
	if len(idx) == 1 {
		return 0, nil
	}
	return mine[0] + 1, nil
}

// aligned counts, for the occurrence at symbol i of the unit's name that
// is at p in u.ordered, how many of the unit's locals sit where the
// unit's order puts them around it, among the table's local functions and
// objects: a linked module lists each object's locals as one block in the
// object's own order, so the right occurrence lines up with the whole
// block.
func (u *Unit) aligned(i, p int) int {
	fo, rank := u.t.localFuncsAndObjects()
	r, ok := rank[i]
	if !ok {
		return 0
	}
	n := 0
	for k, name := range u.ordered {
		if j := r - p + k; j >= 0 && j < len(fo) && u.t.Symbols[fo[j]].Name == name {
			n++
		}
	}
	return n
}

// localFuncsAndObjects returns the indices of the table's local functions
// and data objects in lookup order, and each one's rank among them.
func (t *Table) localFuncsAndObjects() ([]int, map[int]int) {
	if t.fo == nil {
		t.foRank = map[int]int{}
		for i, s := range t.Symbols {
			if s.Local && (s.Kind == KindFunc || s.Kind == KindObject) {
				t.foRank[i] = len(t.fo)
				t.fo = append(t.fo, i)
			}
		}
	}
	return t.fo, t.foRank
}

// candidates returns the positions among idx (the occurrences of a name)
// that can be the unit's symbol: of the right binding and, for a local, in
// one of the unit's translation units when the table has them.
func candidates(idx []int, u *Unit, local bool) []int {
	var out []int
	for pos, i := range idx {
		s := u.t.Symbols[i]
		if s.Local == local && (!local || u.units == nil || u.units[s.Unit]) {
			out = append(out, pos)
		}
	}
	return out
}

// best keeps the positions with the highest score.
func (u *Unit) best(positions []int, score func(int) int) []int {
	top, out := -1, []int(nil)
	for _, pos := range positions {
		switch n := score(pos); {
		case n > top:
			top, out = n, []int{pos}
		case n == top:
			out = append(out, pos)
		}
	}
	return out
}

// neighbours counts the unit's local names around symbol i.
func (u *Unit) neighbours(i int) int {
	n := 0
	for j := max(0, i-neighbourhood); j <= min(len(u.t.Symbols)-1, i+neighbourhood); j++ {
		if j != i && u.t.Symbols[j].Local && u.locals[u.t.Symbols[j].Name] {
			n++
		}
	}
	return n
}
