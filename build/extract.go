package build

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/graft-live/graft/elfobj"
	"github.com/graft-live/graft/kernel"
	"github.com/graft-live/graft/klp"
	"github.com/graft-live/graft/objdiff"
)

// diff compares every pair and keeps the units that changed and that the
// target builds.
func (b *builder) diff(ctx context.Context, pairs []pair) ([]*unit, error) {
	objdiff.TuneGC()
	if err := b.loadSymbols(); err != nil {
		return nil, err
	}
	var units []*unit
	for _, p := range pairs {
		object := "vmlinux"
		if p.orig.Module != "" {
			object = kernel.ModuleName(p.orig.Module)
		}
		ru := Unit{Path: p.spec.Path, Object: object}
		origA, err := elfobj.Open(p.orig.File)
		if err != nil {
			return nil, err
		}
		patchedA, err := elfobj.Open(p.patched.File)
		if err != nil {
			return nil, err
		}
		res := objdiff.Compare(origA, patchedA)
		if len(res.Changes) == 0 && len(res.Errors) == 0 {
			b.rep.Units = append(b.rep.Units, ru)
			continue
		}
		ru.Changed = true
		b.rep.Units = append(b.rep.Units, ru)
		u := &unit{pair: p, object: object, diff: res}
		// Fresh copies for klp: objdiff keeps its own.
		if u.orig, err = elfobj.Open(p.orig.File); err != nil {
			return nil, err
		}
		if u.patched, err = elfobj.Open(p.patched.File); err != nil {
			return nil, err
		}
		u.orig.ResolveSectionRelocs()
		u.patched.ResolveSectionRelocs()
		u.og, u.pg = newGraph(u.orig), newGraph(u.patched)
		// What the target does not build has no findings of its own.
		if built, err := b.checkBuilt(ctx, u); err != nil || !built {
			if err != nil {
				return nil, err
			}
			continue
		}
		if err := b.checkLayouts(u); err != nil {
			return nil, err
		}
		b.selectUnit(u)
		b.checkUnit(u)
		if len(u.carry) > 0 {
			units = append(units, u)
		}
	}
	return units, nil
}

// module is what the extraction produced, ready to link.
type module struct {
	objects []*elfobj.File
	funcs   []klp.Func
	ns      []string
	// sections maps the sections of carried code and data to the object
	// they patch, for Convert.
	sections map[string]string
}

// extract takes the carried code of every unit out of its patched object.
func (b *builder) extract(ctx context.Context, units []*unit) (*module, error) {
	syms := b.syms
	for _, u := range units {
		for name := range u.carry {
			if s := u.pg.sym(name); s != nil && s.Bind != elf.STB_LOCAL && !u.redirect[name] {
				syms.defined[name] = true
			}
		}
	}
	layout, err := b.layout(ctx)
	if err != nil {
		return nil, err
	}
	m := &module{sections: map[string]string{}}
	refs := map[string]klp.Ref{}
	for i, u := range units {
		res := u.res
		in := &klp.Unit{Name: u.spec.Path, Patched: u.patched, Resolver: res, Layout: layout, Prefix: fmt.Sprintf("graft%d_", i)}
		for name := range u.carry {
			in.Carry = append(in.Carry, name)
		}
		sort.Strings(in.Carry)
		var redirects []string
		for name := range u.redirect {
			redirects = append(redirects, name)
		}
		sort.Strings(redirects)
		for _, name := range redirects {
			oldName, local, err := res.origName(u.pg.sym(name))
			if err != nil {
				return nil, err
			}
			pos, err := res.loc.Sympos(oldName, local)
			if err != nil {
				return nil, fmt.Errorf("%s: replace %s: %w", u.spec.Path, name, err)
			}
			in.Redirects = append(in.Redirects, klp.Redirect{Symbol: name, Object: u.object, OldName: oldName, Sympos: pos})
			b.rep.Functions = append(b.rep.Functions, Function{Object: u.object, Name: oldName, Sympos: pos, Unit: u.spec.Path, Reasons: u.carry[name]})
		}
		out, err := klp.Extract(in)
		if err != nil {
			switch {
			case errors.Is(err, klp.ErrLateReference):
				b.rep.finding(Finding{ID: "static-key", Severity: SeverityError, Where: u.spec.Path, Message: err.Error(),
					Suggestion: "keep static_branch() on a key of the module out of the changed code, or test the key with static_key_enabled() there"})
				continue
			case errors.Is(err, klp.ErrUnsupported):
				b.rep.finding(Finding{ID: "unsupported", Severity: SeverityError, Where: u.spec.Path, Message: err.Error()})
				continue
			}
			return nil, err
		}
		for i := range b.rep.Units {
			if b.rep.Units[i].Path == u.spec.Path {
				b.rep.Units[i].Carried = out.Carried
			}
		}
		b.rep.Notes = append(b.rep.Notes, out.Notes...)
		for _, w := range out.Warnings {
			b.rep.finding(Finding{ID: w.ID, Severity: SeverityWarning, Where: u.spec.Path, Message: w.Message})
		}
		for _, r := range out.Refs {
			refs[r.SymbolName()] = r
		}
		if err := m.addSections(u, out.Object, layout); err != nil {
			return nil, err
		}
		m.objects = append(m.objects, out.Object)
		m.funcs = append(m.funcs, out.Funcs...)
	}
	for _, r := range refs {
		if r.Extern {
			b.rep.Externs = append(b.rep.Externs, r.Name)
		} else {
			b.rep.Relocations = append(b.rep.Relocations, r)
		}
	}
	for ns := range syms.namespaces {
		m.ns = append(m.ns, ns)
	}
	if syms.vmlinux != nil {
		b.rep.Symbols = append(b.rep.Symbols, "vmlinux: "+syms.vmlinux.Source)
	}
	for name, t := range syms.modules {
		b.rep.Symbols = append(b.rep.Symbols, name+": "+t.Source)
	}
	sort.Strings(b.rep.Symbols)
	b.checkModuleReload(units)
	b.headerSummary(units)
	if len(m.funcs) == 0 && len(b.rep.errors()) == 0 {
		return nil, fmt.Errorf("%w: the changed code replaces no function of the running kernel", ErrNoChanges)
	}
	return m, nil
}

// loadSymbols prepares the target's symbols (read as units need them).
func (b *builder) loadSymbols() error {
	if b.syms != nil {
		return nil
	}
	exports, err := b.target.ReadExports()
	if err != nil {
		return err
	}
	b.syms = &symbols{cache: b.cache, target: b.target, exports: exports, modules: map[string]*kernel.Table{},
		defined: map[string]bool{}, namespaces: map[string]bool{}}
	return nil
}

// checkBuilt refuses a unit that the target does not build into its
// object: with translation units in the symbols, no unit has its file
// name; without, none of its functions is there by name. A unit compiled
// only because it includes a changed header is skipped with a note.
// It gives the unit its resolver.
func (b *builder) checkBuilt(ctx context.Context, u *unit) (bool, error) {
	t, err := b.syms.table(ctx, u.object)
	if errors.Is(err, kernel.ErrNoModule) {
		return b.notBuilt(u, fmt.Sprintf("the target kernel has no module %s", u.object)), nil
	}
	if err != nil {
		return false, err
	}
	u.res = &resolver{ctx: ctx, syms: b.syms, u: u, loc: t.Locate(path.Base(u.source()), locals(u.orig)).Ordered(orderedLocals(u.orig))}
	res := u.res
	if t.HasUnits() {
		file := path.Base(u.source())
		if len(locals(u.orig)) > 0 {
			if res.loc.Found() {
				return true, nil
			}
			return b.notBuilt(u, fmt.Sprintf("no translation unit %s of %s (%s) has its local symbols", file, u.object, t.Source)), nil
		}
		for _, name := range t.Units {
			if name == file {
				return true, nil
			}
		}
		return b.notBuilt(u, fmt.Sprintf("%s has no translation unit %s (%s)", u.object, file, t.Source)), nil
	}
	funcs, found := 0, 0
	for _, s := range u.orig.Symbols {
		if s.Type == elf.STT_FUNC && s.Section != nil && !inSection(s, ".init.", ".exit.") {
			funcs++
			if len(t.Lookup(s.Name)) > 0 {
				found++
			}
		}
	}
	if funcs > 0 && found == 0 {
		return b.notBuilt(u, fmt.Sprintf("none of its functions is in %s (%s)", u.object, t.Source)), nil
	}
	return true, nil
}

// notBuilt records a unit that the target does not build and returns
// false.
func (b *builder) notBuilt(u *unit, why string) bool {
	if u.spec.Header {
		b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("%s: not built by this kernel's configuration (%s); skipped", u.spec.Path, why))
		return false
	}
	b.rep.finding(Finding{ID: "not-built", Severity: SeverityError, Where: u.spec.Path,
		Message:    why + ": the target kernel's configuration does not build this file",
		Suggestion: "check that the patch is for this kernel and its configuration"})
	return false
}

// checkModuleReload warns about a kernel limit that applies to patches of
// loadable modules: kernels before the livepatch core learnt to clear klp
// relocations when a patched module goes (klp_clear_object_relocs) refuse
// to load the module again while the patch is applied. The target's own
// source says which kind it is.
func (b *builder) checkModuleReload(units []*unit) {
	mods := map[string]bool{}
	for _, u := range units {
		if u.object != "vmlinux" {
			mods[u.object] = true
		}
	}
	if len(mods) == 0 {
		return
	}
	src, err := os.ReadFile(filepath.Join(b.target.SourceDir, "kernel", "livepatch", "core.c"))
	if err != nil || bytes.Contains(src, []byte("klp_clear_object_relocs")) {
		return
	}
	var names []string
	for m := range mods {
		names = append(names, m)
	}
	sort.Strings(names)
	b.rep.finding(Finding{ID: "module-reload", Severity: SeverityWarning, Where: strings.Join(names, ", "),
		Message:    "this kernel does not clear klp relocations when a patched module is removed: while the patch is applied, the module loads once (before or after the patch) but cannot be unloaded and loaded again",
		Suggestion: "revert the patch before reloading the module"})
}

// addSections records which object the carried sections of u patch. The
// linker merges sections of the same name, so two units of different
// objects must not share one, except the special sections, whose entries
// belong to every unit.
func (m *module) addSections(u *unit, f *elfobj.File, layout *klp.Layout) error {
	for _, s := range f.Sections {
		if s.Type == elf.SHT_NULL || s.Type == elf.SHT_RELA || layout.Special(s.Name) != nil || layout.IsParallel(s.Name) {
			continue
		}
		if o, ok := m.sections[s.Name]; ok && o != u.object {
			return fmt.Errorf("build: %s: section %s carries code of %s and %s, which the linker would merge: build the patches of each object separately", u.spec.Path, s.Name, o, u.object)
		}
		m.sections[s.Name] = u.object
	}
	return nil
}
