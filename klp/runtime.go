package klp

import (
	"debug/elf"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/graft-live/graft/elfobj"
)

// Runtime constants (arch/x86/include/asm/runtime-const.h, Linux 6.11): the
// kernel patches immediates of vmlinux code at boot from the entries of
// runtime_ptr_SYM and runtime_shift_SYM, and never those of modules. A
// livepatch that carries such code must not keep the placeholder.
const (
	runtimePtrPrefix   = "runtime_ptr_"
	runtimeShiftPrefix = "runtime_shift_"
	// runtimePlaceholder is the immediate the kernel overwrites.
	runtimePlaceholder = 0x0123456789abcdef
)

// runtimePtr is a carried "movabs $placeholder, %reg" whose placeholder is
// the value of the variable sym.
type runtimePtr struct {
	sec *elfobj.Section // where the immediate is, in the patched object
	off int64           // of the immediate
	sym *elfobj.Symbol  // the variable, undefined
}

// runtimeConstants records the carried instructions that runtime_ptr_
// entries point at, and refuses runtime_shift_ ones.
func (e *extractor) runtimeConstants(sec *elfobj.Section) error {
	name, isPtr := strings.CutPrefix(sec.Name, runtimePtrPrefix)
	if !isPtr && !strings.HasPrefix(sec.Name, runtimeShiftPrefix) {
		return nil
	}
	for _, r := range e.relocs[sec] {
		if !e.anchored(r) {
			continue
		}
		if !isPtr {
			return fmt.Errorf("%w: the new code shifts by %s, a runtime constant that the kernel sets at boot in vmlinux code only", ErrUnsupported, strings.TrimPrefix(sec.Name, runtimeShiftPrefix))
		}
		loc := e.res.Locate(r, false)
		if e.hasRuntimePtr(loc.Section, loc.Offset) {
			continue
		}
		sym, ok := e.runtimeSyms[name]
		if !ok {
			sym = &elfobj.Symbol{Name: name, Bind: elf.STB_GLOBAL, Type: elf.STT_NOTYPE, Shndx: elf.SHN_UNDEF}
			if err := e.resolve(sym); err != nil {
				return err
			}
			e.runtimeSyms[name] = sym
		}
		e.runtimePtrs = append(e.runtimePtrs, runtimePtr{sec: loc.Section, off: loc.Offset, sym: sym})
	}
	return nil
}

func (e *extractor) hasRuntimePtr(sec *elfobj.Section, off int64) bool {
	for _, p := range e.runtimePtrs {
		if p.sec == sec && p.off == off {
			return true
		}
	}
	return false
}

// rewriteRuntimePtrs turns each carried "movabs $placeholder, %reg" (REX.W
// B8+r imm64, 10 bytes) into "mov sym(%rip), %reg" (REX.W 8B /r disp32, 7
// bytes) and a 3-byte no-op: the instruction loads the variable's value,
// which is what the kernel would have written into the immediate at boot.
// It returns the relocations to add to each output section.
func (e *extractor) rewriteRuntimePtrs() (map[*elfobj.Section][]elfobj.Reloc, error) {
	extra := map[*elfobj.Section][]elfobj.Reloc{}
	for _, p := range e.runtimePtrs {
		piece := e.pieceAt(p.sec, p.off, false)
		out := e.outSec[p.sec]
		if piece == nil || out == nil {
			return nil, fmt.Errorf("%w: runtime constant %s at %s+%#x is outside the carried code", ErrUnsupported, p.sym.Name, p.sec.Name, p.off)
		}
		at := p.off - int64(piece.start) + int64(piece.out) // of the immediate in out
		if at < 2 || at+8 > int64(len(out.Data)) {
			return nil, fmt.Errorf("%w: runtime constant %s at %s+%#x: no room for the instruction", ErrUnsupported, p.sym.Name, p.sec.Name, p.off)
		}
		insn := out.Data[at-2 : at+8]
		rex, op := insn[0], insn[1]
		if rex&0xfe != 0x48 || op&0xf8 != 0xb8 || binary.LittleEndian.Uint64(insn[2:]) != runtimePlaceholder {
			return nil, fmt.Errorf("%w: runtime constant %s at %s+%#x is not a movabs of the placeholder (% x)", ErrUnsupported, p.sym.Name, p.sec.Name, p.off, insn)
		}
		reg := op & 7
		newRex := byte(0x48)
		if rex&1 != 0 { // REX.B named r8-r15; as the ModRM reg it is REX.R
			newRex |= 4
		}
		copy(insn, []byte{newRex, 0x8b, 0x05 | reg<<3, 0, 0, 0, 0, 0x0f, 0x1f, 0x00})
		// The displacement is relative to the end of the 7-byte mov: 4
		// bytes after the field.
		extra[out] = append(extra[out], elfobj.Reloc{Offset: uint64(at + 1), Type: elf.R_X86_64_PC32, Sym: e.external(e.refs[p.sym], p.sym), Addend: -4})
	}
	return extra, nil
}

// isRuntimeSection reports the sections of runtime constants, which the
// module loader ignores.
func isRuntimeSection(name string) bool {
	return strings.HasPrefix(name, runtimePtrPrefix) || strings.HasPrefix(name, runtimeShiftPrefix)
}
