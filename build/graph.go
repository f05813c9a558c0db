package build

import (
	"debug/elf"
	"sort"
	"strings"

	"github.com/graft-live/graft/elfobj"
)

// use is one reference to a symbol from a function or a data object.
type use struct {
	// from is the function or data object that holds the reference.
	from *elfobj.Symbol
	// call says the reference is a call or a jump (the relocation type a
	// call instruction has); otherwise the address is taken.
	call bool
}

// graph indexes an object's references: which functions and data objects
// refer to each symbol. Relocations through section symbols must be
// resolved first (elfobj.File.ResolveSectionRelocs).
type graph struct {
	f      *elfobj.File
	uses   map[*elfobj.Symbol][]use
	byName map[string]*elfobj.Symbol
	// ftrace holds the function entries that ftrace can redirect: the
	// targets of __mcount_loc (or __patchable_function_entries) entries.
	ftrace map[*elfobj.Symbol]bool
}

func newGraph(f *elfobj.File) *graph {
	g := &graph{f: f, uses: map[*elfobj.Symbol][]use{}, byName: map[string]*elfobj.Symbol{}, ftrace: map[*elfobj.Symbol]bool{}}
	bySection := map[*elfobj.Section][]*elfobj.Symbol{}
	for _, s := range f.Symbols {
		if s.Section == nil || s.Type == elf.STT_SECTION || s.Type == elf.STT_FILE {
			continue
		}
		if _, dup := g.byName[s.Name]; !dup {
			g.byName[s.Name] = s
		}
		if s.Type == elf.STT_FUNC || s.Type == elf.STT_OBJECT {
			bySection[s.Section] = append(bySection[s.Section], s)
		}
	}
	for _, syms := range bySection {
		sort.SliceStable(syms, func(i, j int) bool { return syms[i].Value < syms[j].Value })
	}
	holder := func(sec *elfobj.Section, off uint64) *elfobj.Symbol {
		var best *elfobj.Symbol
		for _, s := range bySection[sec] {
			if s.Value > off {
				break
			}
			if off < s.Value+s.Size {
				best = s
			}
		}
		return best
	}
	for _, rs := range f.Sections {
		if rs.Type != elf.SHT_RELA || rs.Info == nil {
			continue
		}
		sec := rs.Info
		entries := sec.Name == "__mcount_loc" || sec.Name == "__patchable_function_entries"
		for _, r := range rs.Relocs {
			if r.Sym == nil {
				continue
			}
			if entries {
				if r.Sym.Type == elf.STT_FUNC && r.Addend < 16 {
					g.ftrace[r.Sym] = true
				}
				continue
			}
			from := holder(sec, r.Offset)
			if from == nil || from == r.Sym {
				continue
			}
			g.uses[r.Sym] = append(g.uses[r.Sym], use{from: from, call: r.Type == elf.R_X86_64_PLT32})
		}
	}
	return g
}

// sym returns the defined symbol called name, or nil.
func (g *graph) sym(name string) *elfobj.Symbol { return g.byName[name] }

// usersOf returns the base names of the functions that refer to sym.
func (g *graph) usersOf(sym *elfobj.Symbol) map[string]bool {
	out := map[string]bool{}
	for _, u := range g.uses[sym] {
		if u.from.Type == elf.STT_FUNC {
			out[baseName(u.from.Name)] = true
		}
	}
	return out
}

// baseName strips compiler suffixes: foo.isra.0 -> foo, counter.3 ->
// counter.
func baseName(name string) string {
	if i := strings.IndexByte(name, '.'); i > 0 {
		return name[:i]
	}
	return name
}

// suffixKind is a symbol's suffix without numbers: foo.constprop.0 ->
// ".constprop".
func suffixKind(name string) string {
	rest := strings.TrimPrefix(name, baseName(name))
	var parts []string
	for _, p := range strings.Split(rest, ".") {
		if p != "" && strings.Trim(p, "0123456789") != "" {
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "." + strings.Join(parts, ".")
}

// inSection reports whether sym is defined in a section whose name starts
// with one of prefixes.
func inSection(sym *elfobj.Symbol, prefixes ...string) bool {
	if sym == nil || sym.Section == nil {
		return false
	}
	for _, p := range prefixes {
		if strings.HasPrefix(sym.Section.Name, p) {
			return true
		}
	}
	return false
}
