package x86

import (
	"testing"

	"golang.org/x/arch/x86/x86asm"
)

func TestDecode(t *testing.T) {
	for _, c := range []struct {
		code []byte
		op   x86asm.Op
		len  int
	}{
		{[]byte{0xf3, 0x0f, 0x1e, 0xfa, 0x90}, x86asm.NOP, 4}, // endbr64
		{[]byte{0xf3, 0x0f, 0x1e, 0xfb}, x86asm.NOP, 4},       // endbr32
		{[]byte{0x48, 0xc7, 0xc7, 0, 0, 0, 0}, x86asm.MOV, 7}, // mov $0, %rdi
		{[]byte{0xe8, 0, 0, 0, 0}, x86asm.CALL, 5},            // call
		{[]byte{0xf3, 0xc3}, x86asm.RET, 2},                   // rep ret
	} {
		inst, err := Decode(c.code)
		if err != nil || inst.Op != c.op || inst.Len != c.len {
			t.Errorf("Decode(% x) = %v (len %d), %v; want %v, len %d", c.code, inst.Op, inst.Len, err, c.op, c.len)
		}
	}
}
