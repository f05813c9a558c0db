package objdiff

import (
	"bytes"
	"debug/elf"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"

	"golang.org/x/arch/x86/x86asm"
	"golang.org/x/sync/errgroup"

	"github.com/graft-live/graft/elfobj"
	"github.com/graft-live/graft/internal/x86"
)

// CompareFiles reads two objects and compares them.
func CompareFiles(origPath, patchedPath string) (*Result, error) {
	orig, err := elfobj.Open(origPath)
	if err != nil {
		return nil, fmt.Errorf("objdiff: %w", err)
	}
	patched, err := elfobj.Open(patchedPath)
	if err != nil {
		return nil, fmt.Errorf("objdiff: %w", err)
	}
	r := Compare(orig, patched)
	r.Orig, r.Patched = origPath, patchedPath
	return r, nil
}

// description is an entity described in one object.
type description struct {
	e     *entity
	parts []part
}

// Compare returns what differs between two compilations of one translation
// unit. Entities are described in parallel.
func Compare(orig, patched *elfobj.File) *Result {
	var ixs [2]*index
	var g errgroup.Group
	g.Go(func() error { ixs[0] = newIndex(orig); return nil })
	g.Go(func() error { ixs[1] = newIndex(patched); return nil })
	g.Wait()
	a, b := ixs[0], ixs[1]

	descs := [2]map[string]*description{{}, {}}
	type job struct {
		side int
		e    *entity
		d    *description
	}
	var jobs []job
	for side, ix := range ixs {
		for key, e := range ix.entities {
			d := &description{e: e}
			descs[side][key] = d
			jobs = append(jobs, job{side, e, d})
		}
	}
	g = errgroup.Group{}
	g.SetLimit(runtime.GOMAXPROCS(0))
	for _, j := range jobs {
		g.Go(func() error {
			ix := ixs[j.side]
			for _, s := range j.e.syms {
				j.d.parts = append(j.d.parts, ix.describe(s))
			}
			return nil
		})
	}
	g.Wait()

	res := &Result{Changes: []Change{}, Errors: []Finding{}}
	keys := map[string]bool{}
	for side := range descs {
		for k := range descs[side] {
			keys[k] = true
		}
	}
	// A name that is a function on one side and an object on the other
	// changed type.
	byName := map[string][]string{}
	for k := range keys {
		_, name, _ := strings.Cut(k, ":")
		byName[name] = append(byName[name], k)
	}
	for name, ks := range byName {
		if len(ks) == 2 {
			sort.Strings(ks)
			_, inOrigF := descs[0][ks[0]]
			_, inPatchedF := descs[1][ks[0]]
			if inOrigF != inPatchedF {
				from, to := "function", "object"
				if !inOrigF {
					from, to = to, from
				}
				res.Errors = append(res.Errors, Finding{Symbol: name, Message: fmt.Sprintf("symbol type changed from %s to %s: a livepatch cannot change the type of a symbol", from, to)})
				delete(keys, ks[0])
				delete(keys, ks[1])
			}
		}
	}

	for k := range keys {
		da, db := descs[0][k], descs[1][k]
		switch {
		case da == nil:
			c := Change{Name: db.e.name, Kind: db.e.kind, Status: New, Symbols: names(db.e.syms), Reasons: []string{"new " + string(db.e.kind)}}
			res.Changes = append(res.Changes, c)
		case db == nil:
			c := Change{Name: da.e.name, Kind: da.e.kind, Status: Removed, Symbols: names(da.e.syms), Reasons: []string{string(da.e.kind) + " removed"}}
			res.Changes = append(res.Changes, c)
		default:
			if c, finding := compareEntity(a, b, da, db); finding != nil {
				res.Errors = append(res.Errors, *finding)
			} else if c != nil {
				res.Changes = append(res.Changes, *c)
			}
		}
	}
	addInlineReasons(res, patched)
	sort.Slice(res.Changes, func(i, j int) bool { return res.Changes[i].Name < res.Changes[j].Name })
	sort.Slice(res.Errors, func(i, j int) bool { return res.Errors[i].Symbol < res.Errors[j].Symbol })
	return res
}

func names(syms []*elfobj.Symbol) []string {
	var out []string
	for _, s := range syms {
		out = append(out, s.Name)
	}
	return out
}

// readOnly reports data in a section the kernel maps read-only.
func readOnly(s *elfobj.Symbol) bool {
	return s != nil && s.Section != nil && s.Section.Flags&elf.SHF_WRITE == 0
}

// compareEntity returns the change between two descriptions, nil when they
// are the same, or a finding when the difference cannot be patched.
func compareEntity(a, b *index, da, db *description) (*Change, *Finding) {
	e := db.e
	if e.kind == Object {
		pa, pb := da.parts[0], db.parts[0]
		switch {
		case pa.size != pb.size && readOnly(pa.sym) && readOnly(pb.sym):
			// A constant of another size is a new constant: the module
			// can carry it, with the code that reads it.
			return &Change{Name: e.name, Kind: Object, Status: Changed, Symbols: names(e.syms),
				Reasons: []string{fmt.Sprintf("constant's size changed from %d to %d bytes", pa.size, pb.size)}}, nil
		case pa.size != pb.size:
			return nil, &Finding{Symbol: e.name, Message: fmt.Sprintf("data object size changed from %d to %d bytes: a livepatch cannot change data layout (use shadow variables)", pa.size, pb.size)}
		}
		if pa.nobits != pb.nobits {
			return &Change{Name: e.name, Kind: Object, Status: Changed, Symbols: names(e.syms), Reasons: []string{"moved between zero-initialized and initialized data"}}, nil
		}
		if bytes.Equal(pa.code, pb.code) && slices.Equal(pa.relocs, pb.relocs) {
			return nil, nil
		}
		reasons := []string{"initial value changed"}
		if !slices.Equal(pa.relocs, pb.relocs) {
			reasons = append(reasons, referenceReasons(pa.relocs, pb.relocs)...)
		}
		return &Change{Name: e.name, Kind: Object, Status: Changed, Symbols: names(e.syms), Reasons: reasons}, nil
	}

	var reasons []string
	sa, sb := suffixes(da.parts), suffixes(db.parts)
	if !sameKeys(sa, sb) || len(da.parts) != len(db.parts) {
		reasons = append(reasons, fmt.Sprintf("compiled as %s, was %s", strings.Join(names(db.e.syms), ", "), strings.Join(names(da.e.syms), ", ")))
	} else {
		body, refs := false, false
		for i := range da.parts {
			pa, pb := da.parts[i], db.parts[i]
			sameRefs := slices.Equal(pa.relocs, pb.relocs)
			sameCode := bytes.Equal(pa.code, pb.code)
			if sameRefs && !sameCode && lineOnly(pa, pb) {
				continue
			}
			body = body || !sameCode
			if !sameRefs {
				refs = true
				reasons = append(reasons, referenceReasons(pa.relocs, pb.relocs)...)
			}
		}
		if !body && !refs {
			return nil, nil
		}
		if body {
			reasons = append([]string{"body changed"}, reasons...)
		} else if len(reasons) == 0 {
			reasons = append(reasons, "relocations changed (same targets, other offsets or addends)")
		}
	}
	c := &Change{Name: e.name, Kind: Function, Status: Changed, Symbols: names(e.syms), Reasons: dedup(reasons)}
	for _, s := range e.syms {
		if suffix(s.Name) == "" || !strings.Contains(suffix(s.Name), "cold") && !strings.Contains(suffix(s.Name), "part") {
			if !b.hasFtraceEntry(s) {
				c.Status = Unpatchable
				c.Reasons = append(c.Reasons, s.Name+" has no ftrace entry (notrace?): the livepatch core cannot redirect it; patch its callers instead")
				break
			}
		}
	}
	return c, nil
}

func sameKeys(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func suffixes(ps []part) map[string]bool {
	m := map[string]bool{}
	for _, p := range ps {
		m[p.suffix] = true
	}
	return m
}

func dedup(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// referenceReasons names the targets that one side references and the
// other does not.
func referenceReasons(a, b []reloc) []string {
	targets := func(rs []reloc) map[string]bool {
		m := map[string]bool{}
		for _, r := range rs {
			m[r.Target] = true
		}
		return m
	}
	ta, tb := targets(a), targets(b)
	var added, removed []string
	for t := range tb {
		if !ta[t] {
			added = append(added, t)
		}
	}
	for t := range ta {
		if !tb[t] {
			removed = append(removed, t)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	var out []string
	if len(added) > 0 {
		out = append(out, "now references "+limit(added))
	}
	if len(removed) > 0 {
		out = append(out, "no longer references "+limit(removed))
	}
	return out
}

func limit(xs []string) string {
	for i, x := range xs {
		x = strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(x, "extern:"), "function:"), "object:")
		// The usual addends (0, and -4 for a PC-relative field) say nothing.
		x = strings.TrimSuffix(strings.TrimSuffix(x, "+0"), "-4")
		xs[i] = x
	}
	if len(xs) > 4 {
		return strings.Join(xs[:4], ", ") + fmt.Sprintf(" and %d more", len(xs)-4)
	}
	return strings.Join(xs, ", ")
}

// lineHelpers take a source line number as an argument: a call to one of
// them after a moved __LINE__ is not a change.
var lineHelpers = map[string]bool{
	"__warn_printk": true, "warn_slowpath_fmt": true, "_printk": true, "printk": true,
	"__might_sleep": true, "__might_fault": true, "__might_resched": true, "__cant_sleep": true,
	"__cant_migrate": true, "__dynamic_pr_debug": true, "__dynamic_dev_dbg": true, "__dynamic_netdev_dbg": true,
	"_dev_warn": true, "_dev_err": true, "_dev_info": true, "_dev_notice": true, "__warn": true, "report_bug": true,
	"__ubsan_handle_out_of_bounds": true, "lockdep_rcu_suspicious": true, "__bug": true,
}

// lineOnly reports whether two functions with the same references differ
// only in immediates moved into registers shortly before a call to a line
// number helper: the __LINE__ argument of a WARN or printk that moved.
//
// The rule, on the decoded instructions in lockstep: every differing
// instruction must be a MOV of an immediate into the same register, with
// the same length, and a call to a function in lineHelpers must follow
// within 12 instructions.
func lineOnly(a, b part) bool {
	if len(a.code) != len(b.code) {
		return false
	}
	calls := helperCalls(b)
	var pending []int // instruction indexes with a differing immediate
	off, n := 0, 0
	var insts []int // offsets of instructions
	for off < len(a.code) {
		ia, erra := x86.Decode(a.code[off:])
		ib, errb := x86.Decode(b.code[off:])
		if erra != nil || errb != nil || ia.Len != ib.Len {
			return false
		}
		if !bytes.Equal(a.code[off:off+ia.Len], b.code[off:off+ib.Len]) {
			if ia.Op != x86asm.MOV || ib.Op != x86asm.MOV || ia.Args[0] != ib.Args[0] {
				return false
			}
			if _, ok := ia.Args[1].(x86asm.Imm); !ok {
				return false
			}
			if _, ok := ib.Args[1].(x86asm.Imm); !ok {
				return false
			}
			pending = append(pending, n)
		}
		insts = append(insts, off)
		off += ia.Len
		n++
	}
	for _, p := range pending {
		found := false
		for k := p + 1; k < len(insts) && k <= p+12; k++ {
			if calls[uint64(insts[k])] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return len(pending) > 0
}

// helperCalls returns the offsets (within the part) of instructions whose
// relocation targets a line helper: a call's relocation sits at its
// offset + 1.
func helperCalls(p part) map[uint64]bool {
	m := map[uint64]bool{}
	for _, r := range p.relocs {
		if lineHelpers[r.Name] && r.Offset > 0 {
			m[r.Offset-1] = true
		}
	}
	return m
}
