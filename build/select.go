package build

import (
	"debug/elf"
	"fmt"
	"sort"
	"strings"

	"github.com/graft-live/graft/elfobj"
	"github.com/graft-live/graft/objdiff"
)

// unit is one compiled translation unit on its way into the module.
type unit struct {
	pair
	// object is where the unit is linked: "vmlinux" or a module name.
	object string
	// orig and patched are the two objects, with relocations resolved to
	// symbols; patched is the one klp.Extract takes code from.
	orig, patched *elfobj.File
	og, pg        *graph
	diff          *objdiff.Result
	// carry are the symbols of patched that the module carries, with
	// the reasons; redirect are the carried functions that replace the
	// running kernel's function of the same name.
	carry    map[string][]string
	redirect map[string]bool
	// dbg is the debug information of the patched object, read when a
	// finding needs it.
	dbg *debugInfo
	// res reaches the symbols of the running kernel for the unit's code.
	res *resolver
}

// source is the unit's C file.
func (u *unit) source() string { return strings.TrimSuffix(u.spec.Path, ".o") + ".c" }

// selectUnit decides what the module carries from the unit: changed and
// new functions and new data; the callers of changed functions that
// ftrace cannot redirect; copies of changed constants and the functions
// that use them. What cannot be carried becomes a finding.
func (b *builder) selectUnit(u *unit) {
	u.carry, u.redirect = map[string][]string{}, map[string]bool{}
	for _, f := range u.diff.Errors {
		id := "data-changed"
		if strings.Contains(f.Message, "type changed") {
			id = "symbol-type-changed"
		}
		b.unitFinding(u, f.Symbol, Finding{ID: id, Severity: SeverityError, Where: u.spec.Path + ": " + f.Symbol, Message: f.Message,
			Suggestion: "keep the data layout; add new state with a shadow variable (klp_shadow_alloc) instead"})
	}
	var pending []*elfobj.Symbol // carried symbols whose users must be carried too
	for _, c := range u.diff.Changes {
		switch {
		case c.Status == objdiff.Removed:
			b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("%s: %s %s is gone from the patched object (inlined or unused now); the running kernel keeps it", u.spec.Path, c.Kind, c.Name))
		case c.Kind == objdiff.Function:
			pending = append(pending, b.selectFunction(u, c)...)
		default:
			pending = append(pending, b.selectObject(u, c)...)
		}
	}
	b.propagate(u, pending)
}

func (b *builder) selectFunction(u *unit, c objdiff.Change) []*elfobj.Symbol {
	var syms []*elfobj.Symbol
	for _, name := range c.Symbols {
		if s := u.pg.sym(name); s != nil {
			syms = append(syms, s)
		}
	}
	for _, s := range syms {
		if inSection(s, ".init.", ".exit.", ".ref.") {
			if c.Status == objdiff.New {
				b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("%s: new %s code %s is not carried: it would never run", u.spec.Path, s.Section.Name, s.Name))
				return nil
			}
			b.unitFinding(u, c.Name, Finding{ID: "init-changed", Severity: SeverityError, Where: u.spec.Path + ": " + c.Name,
				Message:    fmt.Sprintf("%s is in %s: it ran at boot or module load and will not run again", s.Name, s.Section.Name),
				Suggestion: "do the work in a pre-patch callback (klp_callbacks.pre_patch) or in the functions that run later"})
			return nil
		}
	}
	reasons := append([]string(nil), c.Reasons...)
	if c.Status == objdiff.New {
		reasons = []string{"new function"}
	}
	for _, s := range syms {
		u.carry[s.Name] = reasons
	}
	main := u.pg.sym(c.Name)
	if c.Status == objdiff.Changed && main != nil && main.Type == elf.STT_FUNC && u.pg.ftrace[main] {
		if o := u.og.sym(c.Name); o != nil && o.Type == elf.STT_FUNC {
			u.redirect[c.Name] = true
		}
	}
	if c.Status == objdiff.New {
		return nil
	}
	var pending []*elfobj.Symbol
	for _, s := range syms {
		if !u.redirect[s.Name] {
			pending = append(pending, s)
		}
	}
	return pending
}

func (b *builder) selectObject(u *unit, c objdiff.Change) []*elfobj.Symbol {
	var syms []*elfobj.Symbol
	for _, name := range c.Symbols {
		if s := u.pg.sym(name); s != nil {
			syms = append(syms, s)
		}
	}
	switch {
	case c.Status == objdiff.New:
		for _, s := range syms {
			if inSection(s, ".init.", ".exit.") {
				continue
			}
			u.carry[s.Name] = []string{"new data"}
		}
		return nil
	case len(syms) > 0 && inSection(syms[0], "__dyndbg"):
		// Dynamic debug descriptors record line numbers: the new code gets
		// its own descriptors.
		return nil
	case len(syms) > 0 && syms[0].Section.Flags&elf.SHF_WRITE == 0:
		// A changed constant: the module carries the new value, and every
		// function that reads it is replaced to read that copy.
		for _, s := range syms {
			u.carry[s.Name] = []string{"changed constant"}
		}
		return syms
	}
	b.unitFinding(u, c.Name, Finding{ID: "data-changed", Severity: SeverityError, Where: u.spec.Path + ": " + c.Name,
		Message:    "the initial value of this data changed (" + strings.Join(c.Reasons, "; ") + "); the running kernel's copy keeps its current value",
		Suggestion: "change the code that uses the data instead, or keep new state in a shadow variable (klp_shadow_alloc)"})
	return nil
}

// propagate carries the users of carried symbols that the livepatch core
// cannot redirect to: a function that ftrace cannot redirect is reached
// only through its callers, which are carried in turn (and redirected
// where they can be).
func (b *builder) propagate(u *unit, pending []*elfobj.Symbol) {
	seen := map[*elfobj.Symbol]bool{}
	for len(pending) > 0 {
		s := pending[0]
		pending = pending[1:]
		if seen[s] {
			continue
		}
		seen[s] = true
		if s.Bind != elf.STB_LOCAL && s.Type == elf.STT_FUNC {
			why := "has no ftrace entry (notrace or inline)"
			if len(u.pg.ftrace) == 0 {
				why = "has no ftrace entry: its file is compiled without ftrace (its Makefile removes the flags)"
			}
			b.unitFinding(u, s.Name, Finding{ID: "no-ftrace", Severity: SeverityError, Where: u.spec.Path + ": " + s.Name,
				Message:    fmt.Sprintf("%s changed but %s, and as a global function it may be called from files outside the patch", s.Name, why),
				Suggestion: "patch its callers, or move the change into a function that ftrace can redirect"})
			continue
		}
		for _, use := range u.pg.uses[s] {
			from := use.from
			if _, ok := u.carry[from.Name]; ok {
				continue
			}
			if from.Type != elf.STT_FUNC && s.Type == elf.STT_OBJECT {
				// The running kernel's data keeps pointing at the old
				// constant (a driver's device ID table, quirk list or
				// operations).
				b.unitFinding(u, s.Name, Finding{ID: "data-changed", Severity: SeverityError, Where: u.spec.Path + ": " + s.Name,
					Message:    fmt.Sprintf("the constant %s changed, and the data %s points at it: the running kernel's %s keeps pointing at the old one, so the new one would never be used", s.Name, from.Name, from.Name),
					Suggestion: "change the code that reads the data instead; a table the kernel was handed at load time (device IDs, quirks) needs the module or kernel updated"})
				continue
			}
			if from.Type != elf.STT_FUNC {
				b.unitFinding(u, s.Name, Finding{ID: "no-ftrace", Severity: SeverityError, Where: u.spec.Path + ": " + s.Name,
					Message:    fmt.Sprintf("%s cannot be redirected (it has no ftrace entry of its own) and %s holds its address, so old code would keep reaching it", s.Name, from.Name),
					Suggestion: "change a function that ftrace can redirect instead"})
				continue
			}
			why := fmt.Sprintf("calls %s, which cannot be redirected", s.Name)
			if s.Type == elf.STT_OBJECT {
				why = fmt.Sprintf("reads %s, which changed", s.Name)
			}
			pending = append(pending, b.carryFunction(u, from, why)...)
		}
	}
}

// carryFunction carries a function with its pieces, redirects it if it
// can be, and returns the pieces whose users must be carried as well.
func (b *builder) carryFunction(u *unit, fn *elfobj.Symbol, why string) []*elfobj.Symbol {
	base := baseName(fn.Name)
	var pieces []*elfobj.Symbol
	for _, s := range u.patched.Symbols {
		if s.Type == elf.STT_FUNC && s.Section != nil && baseName(s.Name) == base {
			pieces = append(pieces, s)
		}
	}
	sort.Slice(pieces, func(i, j int) bool { return pieces[i].Name < pieces[j].Name })
	if inSection(fn, ".init.", ".exit.") {
		b.unitFinding(u, fn.Name, Finding{ID: "init-changed", Severity: SeverityError, Where: u.spec.Path + ": " + fn.Name,
			Message:    fmt.Sprintf("%s would have to be replaced (it %s), but it is boot or load time code that will not run again", fn.Name, why),
			Suggestion: "do the work in a pre-patch callback instead"})
		return nil
	}
	for _, p := range pieces {
		u.carry[p.Name] = []string{why}
	}
	main := u.pg.sym(base)
	if main != nil && main.Type == elf.STT_FUNC && u.pg.ftrace[main] {
		if o := u.og.sym(base); o != nil && o.Type == elf.STT_FUNC {
			u.redirect[base] = true
		}
	}
	var out []*elfobj.Symbol
	for _, p := range pieces {
		if !u.redirect[p.Name] {
			out = append(out, p)
		}
	}
	return out
}
