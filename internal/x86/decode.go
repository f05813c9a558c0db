// Package x86 decodes x86-64 kernel code: golang.org/x/arch/x86/x86asm plus
// the instructions it does not know that every IBT kernel function has.
package x86

import (
	"bytes"

	"golang.org/x/arch/x86/x86asm"
)

// endbr64 and endbr32 mark indirect branch targets (IBT): an IBT kernel
// starts its functions with endbr64. To a CPU without IBT they are NOPs.
var (
	endbr64 = []byte{0xf3, 0x0f, 0x1e, 0xfa}
	endbr32 = []byte{0xf3, 0x0f, 0x1e, 0xfb}
)

// Decode decodes the 64-bit instruction at the start of code. ENDBR64 and
// ENDBR32, which x86asm cannot decode, come back as 4-byte NOPs.
func Decode(code []byte) (x86asm.Inst, error) {
	if bytes.HasPrefix(code, endbr64) || bytes.HasPrefix(code, endbr32) {
		return x86asm.Inst{Op: x86asm.NOP, Len: 4, Mode: 64}, nil
	}
	return x86asm.Decode(code, 64)
}
