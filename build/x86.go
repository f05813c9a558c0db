package build

import (
	"debug/elf"
	"slices"
	"sort"

	"golang.org/x/arch/x86/x86asm"

	"github.com/graft-live/graft/elfobj"
	"github.com/graft-live/graft/internal/x86"
)

// passesThreadFn reports whether the x86-64 code of from passes the
// address of fn as the first argument (%rdi) of a call to one of
// starters: the address is loaded into %rdi (lea or mov) and the next call
// or tail jump goes to a starter, with %rdi not written in between. Taking
// an address for anything else (INIT_WORK, a callback table) in a function
// that also starts a thread does not count.
func passesThreadFn(f *elfobj.File, from, fn *elfobj.Symbol, starters []string) bool {
	sec := from.Section
	if sec == nil || sec.Type == elf.SHT_NOBITS || from.Value+from.Size > uint64(len(sec.Data)) {
		return false
	}
	var relocs []elfobj.Reloc
	for _, rs := range f.Sections {
		if rs.Type == elf.SHT_RELA && rs.Info == sec {
			for _, r := range rs.Relocs {
				if r.Offset >= from.Value && r.Offset < from.Value+from.Size {
					relocs = append(relocs, r)
				}
			}
		}
	}
	sort.Slice(relocs, func(i, j int) bool { return relocs[i].Offset < relocs[j].Offset })
	code := sec.Data[from.Value : from.Value+from.Size]
	res := elfobj.NewResolver(f)
	// in returns the symbols relocations in [pc, pc+n) refer to, also
	// through a section symbol (.text.kswapd+0x10, past an IBT kernel's
	// padding).
	in := func(pc, n int) []*elfobj.Symbol {
		var out []*elfobj.Symbol
		for _, r := range relocs {
			off := int(r.Offset - from.Value)
			if off < pc || off >= pc+n || r.Sym == nil {
				continue
			}
			out = append(out, r.Sym)
			if r.Sym.Type == elf.STT_SECTION {
				if t := res.Locate(r, true).Symbol; t != nil {
					out = append(out, t)
				}
			}
		}
		return out
	}
	armed, since := false, 0
	for pc := 0; pc < len(code); {
		inst, err := x86.Decode(code[pc:])
		if err != nil || inst.Len == 0 {
			return false
		}
		syms := in(pc, inst.Len)
		switch {
		case (inst.Op == x86asm.LEA || inst.Op == x86asm.MOV) && writesRDI(inst) && slices.Contains(syms, fn):
			armed, since = true, 0
		case armed && (inst.Op == x86asm.CALL || inst.Op == x86asm.JMP):
			for _, s := range syms {
				if slices.Contains(starters, s.Name) {
					return true
				}
			}
			if inst.Op == x86asm.CALL {
				armed = false // another call takes %rdi
			}
		case armed && writesRDI(inst):
			armed = false
		}
		if since++; since > 32 {
			armed = false
		}
		pc += inst.Len
	}
	return false
}

// writesRDI reports an instruction whose destination is %rdi or a part of
// it (Go's x86asm puts the destination first).
func writesRDI(inst x86asm.Inst) bool {
	switch inst.Op {
	case x86asm.CMP, x86asm.TEST, x86asm.PUSH:
		return false
	}
	switch inst.Args[0] {
	case x86asm.RDI, x86asm.EDI, x86asm.DI, x86asm.DIB:
		return true
	}
	return false
}
