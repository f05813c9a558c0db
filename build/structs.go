package build

import (
	"debug/dwarf"
	"debug/elf"
	"fmt"
	"sort"
	"strings"
)

// layout is the memory layout of one struct or union type, from DWARF.
type layout struct {
	size    int64
	members []member
}

type member struct {
	name   string
	offset int64
	size   int64
}

// structLayouts reads the named struct and union types of an object's
// debug information (typedef names stand in for anonymous ones). An object
// without DWARF has none.
func structLayouts(file string) (m map[string]layout, err error) {
	defer func() {
		if r := recover(); r != nil { // debug/dwarf can panic on malformed input
			m, err = nil, fmt.Errorf("debug information of %s: %v", file, r)
		}
	}()
	f, err := elf.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if f.Section(".debug_info") == nil {
		return nil, nil
	}
	d, err := f.DWARF()
	if err != nil {
		return nil, fmt.Errorf("debug information of %s: %w", file, err)
	}
	m = map[string]layout{}
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil {
			return nil, fmt.Errorf("debug information of %s: %w", file, err)
		}
		if e == nil {
			return m, nil
		}
		var name string
		var t dwarf.Type
		switch e.Tag {
		case dwarf.TagStructType, dwarf.TagUnionType:
			n, _ := e.Val(dwarf.AttrName).(string)
			if n == "" || e.Val(dwarf.AttrDeclaration) != nil {
				continue
			}
			kind := "struct "
			if e.Tag == dwarf.TagUnionType {
				kind = "union "
			}
			name = kind + n
			t, err = d.Type(e.Offset)
		case dwarf.TagTypedef:
			n, _ := e.Val(dwarf.AttrName).(string)
			if n == "" {
				continue
			}
			var td dwarf.Type
			td, err = d.Type(e.Offset)
			if tt, ok := td.(*dwarf.TypedefType); ok {
				if st, ok := tt.Type.(*dwarf.StructType); ok && st.StructName == "" && !st.Incomplete {
					name, t = n, st
				}
			}
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("debug information of %s: %w", file, err)
		}
		st, ok := t.(*dwarf.StructType)
		if !ok || st.Incomplete || name == "" {
			continue
		}
		l := layout{size: st.ByteSize}
		anon := 0
		for _, f := range st.Field {
			n := f.Name
			if n == "" {
				// Anonymous unions and structs are told apart by order.
				anon++
				n = fmt.Sprintf("(anonymous #%d)", anon)
			}
			l.members = append(l.members, member{name: n, offset: f.ByteOffset, size: f.Type.Size()})
		}
		if _, seen := m[name]; !seen {
			m[name] = l
		}
	}
}

// layoutChange is one type whose layout differs.
type layoutChange struct {
	name, what string
	// member names the new member a shadow variable would hold, as a
	// clause of the suggestion.
	member string
}

// layoutChanges compares the struct layouts of two compilations and says
// what moved; types only one side has are not compared.
func layoutChanges(orig, patched map[string]layout) []layoutChange {
	var out []layoutChange
	for name, a := range orig {
		b, ok := patched[name]
		if !ok {
			continue
		}
		if d, added := describeLayoutChange(a, b); d != "" {
			c := layoutChange{name: name, what: d}
			if len(added) > 0 {
				c.member = ": a shadow variable for " + strings.Join(added, ", ")
			}
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// describeLayoutChange says how two layouts differ, and which members are
// new: the size, new, removed and resized members, then the members that
// moved (the first few by name, and how many).
func describeLayoutChange(a, b layout) (string, []string) {
	var added, changes, moved []string
	old := map[string]member{}
	for _, m := range a.members {
		old[m.name] = m
	}
	for _, m := range b.members {
		o, ok := old[m.name]
		switch {
		case !ok:
			changes = append(changes, fmt.Sprintf("new member %s at offset %d", m.name, m.offset))
			added = append(added, m.name)
		case o.size != m.size:
			changes = append(changes, fmt.Sprintf("%s size %d -> %d", m.name, o.size, m.size))
		case o.offset != m.offset:
			moved = append(moved, fmt.Sprintf("%s %d -> %d", m.name, o.offset, m.offset))
		}
		delete(old, m.name)
	}
	for name := range old {
		changes = append(changes, "member "+name+" removed")
	}
	sort.Strings(changes)
	sort.Strings(moved)
	var diffs []string
	if a.size != b.size {
		diffs = append(diffs, fmt.Sprintf("size %d -> %d bytes", a.size, b.size))
	}
	diffs = append(diffs, changes...)
	const shown = 3
	switch {
	case len(moved) > shown:
		diffs = append(diffs, fmt.Sprintf("%d members moved (offsets %s, ...)", len(moved), strings.Join(moved[:shown], ", ")))
	case len(moved) > 0:
		diffs = append(diffs, "moved (offsets): "+strings.Join(moved, ", "))
	}
	return strings.Join(diffs, ", "), added
}

// checkLayouts refuses struct layouts that differ between the original and
// the patched object of a changed unit: the running kernel's data has the
// old layout.
func (b *builder) checkLayouts(u *unit) error {
	a, err := structLayouts(u.pair.orig.File)
	if err != nil {
		return err
	}
	c, err := structLayouts(u.pair.patched.File)
	if err != nil {
		return err
	}
	for _, ch := range layoutChanges(a, c) {
		b.unitFinding(u, ch.name, Finding{ID: "struct-layout", Severity: SeverityError, Where: u.spec.Path + ": " + ch.name,
			Message:    "the layout changed (" + ch.what + "): data in the running kernel has the old layout, which the new code would misread",
			Suggestion: "keep the type's layout; attach new fields to existing objects with a shadow variable (klp_shadow_get_or_alloc) instead" + ch.member})
	}
	return nil
}
