package objdiff

import (
	"debug/dwarf"
	"slices"
	"sort"

	"github.com/graft-live/graft/elfobj"
)

// addInlineReasons tells, for each changed function, which functions the
// compiler inlined into it (from the patched object's DWARF), and which of
// those changed themselves: a change in an inlined callee shows up only in
// its callers' bodies.
func addInlineReasons(res *Result, patched *elfobj.File) {
	changed := map[string]bool{}
	any := false
	for _, c := range res.Changes {
		if c.Kind == Function && (c.Status == Changed || c.Status == Unpatchable) {
			changed[c.Name] = true
			any = true
		}
	}
	if !any {
		return
	}
	inl := inlinedCallees(patched)
	for i := range res.Changes {
		c := &res.Changes[i]
		if !changed[c.Name] {
			continue
		}
		var same, other []string
		for _, callee := range inl[c.Name] {
			if changed[callee] {
				same = append(same, callee)
			} else {
				other = append(other, callee)
			}
		}
		for _, callee := range same {
			c.Reasons = append(c.Reasons, "inlined callee "+callee+" changed")
		}
		if len(other) > 0 {
			c.Reasons = append(c.Reasons, "inlines "+limit(other))
		}
	}
}

// inlinedCallees maps each function to the functions inlined into it, from
// the DWARF of the object (DW_TAG_inlined_subroutine); nil without debug
// information.
func inlinedCallees(f *elfobj.File) (m map[string][]string) {
	defer func() {
		if recover() != nil {
			m = nil // malformed DWARF only costs the inlining reasons
		}
	}()
	if f.Section(".debug_info") == nil {
		return nil
	}
	d, err := f.DWARF()
	if err != nil {
		return nil
	}
	names := map[dwarf.Offset]string{}
	var entries []*dwarf.Entry
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil || e == nil {
			break
		}
		entries = append(entries, e)
		if e.Tag == dwarf.TagSubprogram {
			if n, ok := e.Val(dwarf.AttrName).(string); ok {
				names[e.Offset] = n
			}
		}
	}
	m = map[string][]string{}
	// Walk again with nesting: inlined subroutines belong to the nearest
	// enclosing concrete subprogram.
	var stack []string
	for _, e := range entries {
		if e.Tag == 0 {
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		name := ""
		switch e.Tag {
		case dwarf.TagSubprogram:
			name = names[e.Offset]
			if o, ok := e.Val(dwarf.AttrAbstractOrigin).(dwarf.Offset); ok {
				name = names[o]
			}
		case dwarf.TagInlinedSubroutine:
			if o, ok := e.Val(dwarf.AttrAbstractOrigin).(dwarf.Offset); ok && len(stack) > 0 {
				if outer := enclosing(stack); outer != "" && names[o] != "" {
					if !slices.Contains(m[outer], names[o]) {
						m[outer] = append(m[outer], names[o])
					}
				}
			}
		}
		if e.Children {
			if e.Tag == dwarf.TagSubprogram {
				stack = append(stack, name)
			} else {
				stack = append(stack, "")
			}
		}
	}
	for k := range m {
		sort.Strings(m[k])
	}
	return m
}

// enclosing is the innermost named subprogram on the stack.
func enclosing(stack []string) string {
	for i := len(stack) - 1; i >= 0; i-- {
		if stack[i] != "" {
			return stack[i]
		}
	}
	return ""
}
