package build

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/graft-live/graft/elfobj"
	"github.com/graft-live/graft/kernel"
	"github.com/graft-live/graft/klp"
)

// symbols holds what the build knows of the target's symbols, loaded on
// first use.
type symbols struct {
	cache   *kernel.Cache
	target  *kernel.Target
	exports kernel.Exports
	vmlinux *kernel.Table
	modules map[string]*kernel.Table
	// defined are the global symbols that units of this build define
	// anew: references to them link inside the module.
	defined map[string]bool
	// namespaces are the symbol namespaces of the exports used.
	namespaces map[string]bool
}

func (s *symbols) table(ctx context.Context, object string) (*kernel.Table, error) {
	if object == "vmlinux" {
		if s.vmlinux == nil {
			t, err := s.cache.VmlinuxSymbols(ctx, s.target, true)
			if err != nil {
				return nil, err
			}
			s.vmlinux = t
		}
		return s.vmlinux, nil
	}
	if t, ok := s.modules[object]; ok {
		return t, nil
	}
	t, err := s.target.ModuleSymbols(object)
	if err != nil {
		return nil, err
	}
	s.modules[object] = t
	return t, nil
}

// resolver reaches the symbols of one unit that the module does not
// carry: it implements klp.Resolver.
type resolver struct {
	ctx  context.Context
	syms *symbols
	u    *unit
	// loc is the unit's place in its object's symbol table.
	loc *kernel.Unit
}

// locals are the names of the local functions and data objects that an
// object defines: what identifies its translation unit in a symbol table.
// Names with a number suffix (__func__.3, __already_done.5, CSWTCH.12) are
// left out: every file has some, so they tell files apart badly.
func locals(f *elfobj.File) []string {
	var out []string
	for _, s := range f.Symbols {
		if s.Bind == elf.STB_LOCAL && s.Section != nil && (s.Type == elf.STT_FUNC || s.Type == elf.STT_OBJECT) && !strings.Contains(s.Name, ".") {
			out = append(out, s.Name)
		}
	}
	sort.Strings(out)
	return out
}

// orderedLocals lists the local functions and data objects of f in its
// symbol table's order, numbered statics included and what the link
// discards left out (see kernel.Unit.Ordered).
func orderedLocals(f *elfobj.File) []string {
	var out []string
	for _, s := range f.Symbols {
		if s.Bind == elf.STB_LOCAL && s.Section != nil && (s.Type == elf.STT_FUNC || s.Type == elf.STT_OBJECT) &&
			s.Section.Flags&elf.SHF_ALLOC != 0 && !strings.HasPrefix(s.Section.Name, ".discard") {
			out = append(out, s.Name)
		}
	}
	return out
}

// Resolve implements klp.Resolver.
func (r *resolver) Resolve(sym *elfobj.Symbol) (klp.Ref, error) {
	if sym.Section == nil {
		return r.undefined(sym.Name)
	}
	name, local, err := r.origName(sym)
	if err != nil {
		return klp.Ref{}, err
	}
	if !local {
		return r.global(name)
	}
	pos, err := r.loc.Sympos(name, true)
	if errors.Is(err, kernel.ErrAmbiguous) && sym.Type == elf.STT_OBJECT {
		// Better a copy than the wrong one of several.
		return klp.Ref{}, fmt.Errorf("%s: %w: %w", r.u.spec.Path, klp.ErrNoCounterpart, err)
	}
	if err != nil {
		return klp.Ref{}, fmt.Errorf("%s: %w", r.u.spec.Path, err)
	}
	return klp.Ref{Object: r.u.object, Name: name, Sympos: pos}, nil
}

// undefined reaches a symbol that the unit does not define.
func (r *resolver) undefined(name string) (klp.Ref, error) {
	if r.syms.defined[name] {
		return klp.Ref{Name: name, Extern: true}, nil
	}
	return r.global(name)
}

// global reaches a global symbol: exports of vmlinux by name, the rest
// through klp relocations, which the livepatch core resolves when the
// patched object is loaded. An export of a module is reached that way too:
// linking to it by name would make the livepatch module depend on that
// module, which need not be loaded when the patch is.
func (r *resolver) global(name string) (klp.Ref, error) {
	objects := []string{r.u.object}
	if ex, ok := r.syms.exports[name]; ok {
		if ex.Module == "vmlinux" {
			if ex.Namespace != "" {
				r.syms.namespaces[ex.Namespace] = true
			}
			return klp.Ref{Object: ex.Module, Name: name, Extern: true}, nil
		}
		objects = []string{ex.Module}
	}
	if objects[0] != "vmlinux" {
		objects = append(objects, "vmlinux")
	}
	for _, obj := range objects {
		t, err := r.syms.table(r.ctx, obj)
		if err != nil {
			return klp.Ref{}, err
		}
		pos, err := t.Locate("", nil).Sympos(name, false)
		if errors.Is(err, kernel.ErrSymbolNotFound) {
			continue
		}
		if err != nil {
			return klp.Ref{}, err
		}
		return klp.Ref{Object: obj, Name: name, Sympos: pos}, nil
	}
	return klp.Ref{}, fmt.Errorf("%s: %w: %s is neither exported nor in %v", r.u.spec.Path, kernel.ErrSymbolNotFound, name, objects)
}

// origName maps a symbol of the patched object to the name the same
// function or data has in the original object, which is the running
// kernel's: clone suffixes and static local numbers may differ between
// the two compilations.
func (r *resolver) origName(sym *elfobj.Symbol) (string, bool, error) {
	if o := r.u.og.sym(sym.Name); o != nil && o.Type == sym.Type && sameKind(o, sym) {
		return o.Name, o.Bind == elf.STB_LOCAL, nil
	}
	base, kind := baseName(sym.Name), suffixKind(sym.Name)
	var cands []*elfobj.Symbol
	for _, o := range r.u.orig.Symbols {
		if o.Section != nil && o.Type == sym.Type && baseName(o.Name) == base && suffixKind(o.Name) == kind {
			cands = append(cands, o)
		}
	}
	if len(cands) > 1 && sym.Type == elf.STT_OBJECT {
		// Static locals of the same name in several functions: the one
		// the same functions use.
		users := r.u.pg.usersOf(sym)
		same := sharingUsers(r.u.og, cands, users)
		// Several in the same functions (two ratelimited messages in one
		// function): the n-th of the patched object is the n-th of the
		// original, in declaration (symbol table) order, when both have
		// as many.
		if len(same) > 1 {
			var mine []*elfobj.Symbol
			for _, p := range r.u.patched.Symbols {
				if p.Section != nil && p.Type == sym.Type && baseName(p.Name) == base && suffixKind(p.Name) == kind {
					mine = append(mine, p)
				}
			}
			mine = sharingUsers(r.u.pg, mine, users)
			if i := slices.Index(mine, sym); i >= 0 && len(mine) == len(same) {
				same = same[i : i+1]
			}
		}
		cands = same
	}
	switch len(cands) {
	case 1:
		return cands[0].Name, cands[0].Bind == elf.STB_LOCAL, nil
	case 0:
		return "", false, fmt.Errorf("%s: %w: %s of the patched object has no counterpart in the original object", r.u.spec.Path, kernel.ErrSymbolNotFound, sym.Name)
	}
	err := fmt.Errorf("%s: %w: %s of the patched object matches %d symbols of the original object", r.u.spec.Path, kernel.ErrAmbiguous, sym.Name, len(cands))
	if sym.Type == elf.STT_OBJECT && sym.Bind == elf.STB_LOCAL {
		err = fmt.Errorf("%w: %w", klp.ErrNoCounterpart, err)
	}
	return "", false, err
}

// sharingUsers keeps the symbols of syms (of g's object, in its symbol
// table order) that a function of users uses.
func sharingUsers(g *graph, syms []*elfobj.Symbol, users map[string]bool) []*elfobj.Symbol {
	var out []*elfobj.Symbol
	for _, c := range syms {
		for f := range g.usersOf(c) {
			if users[f] {
				out = append(out, c)
				break
			}
		}
	}
	return out
}

// sameKind reports whether two symbols of the same name are the same
// entity: both local or both global.
func sameKind(a, b *elfobj.Symbol) bool {
	return (a.Bind == elf.STB_LOCAL) == (b.Bind == elf.STB_LOCAL)
}
