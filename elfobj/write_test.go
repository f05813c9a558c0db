package elfobj

import (
	"bytes"
	"debug/dwarf"
	"debug/elf"
	"fmt"
	"reflect"
	"testing"
)

// TestWriteDoesNotChangeFile writes an object twice: the File stays as it
// was, and both writes give the same bytes.
func TestWriteDoesNotChangeFile(t *testing.T) {
	f, err := Open(compile(t, "testdata/prog.c", "-O2", "-g", "-ffunction-sections", "-fdata-sections"))
	if err != nil {
		t.Fatal(err)
	}
	// Symbols out of ELF order (a global before locals) make Write reorder.
	f.AddSymbol(&Symbol{Name: "late_local", Bind: elf.STB_LOCAL, Type: elf.STT_NOTYPE, Section: f.Sections[1]})
	before := describe(f)
	order := append([]*Symbol(nil), f.Symbols...)
	indices := make([]int, len(f.Symbols))
	for i, s := range f.Symbols {
		indices[i] = s.Index
	}
	var a, b bytes.Buffer
	if err := f.Write(&a); err != nil {
		t.Fatal(err)
	}
	if err := f.Write(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two writes differ")
	}
	if after := describe(f); after != before {
		t.Errorf("Write changed the File: %s", firstDiff(before, after))
	}
	if !reflect.DeepEqual(order, f.Symbols) {
		t.Error("Write reordered the symbols")
	}
	for i, s := range f.Symbols {
		if s.Index != indices[i] {
			t.Errorf("Write changed the index of %s", s.Name)
		}
	}
	l, err := f.Layout()
	if err != nil {
		t.Fatal(err)
	}
	g, err := Read(bytes.NewReader(a.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	late := f.Symbols[len(f.Symbols)-1]
	if i := l.SymbolIndex(late); i < 1 || g.Symbols[i].Name != "late_local" || i >= l.firstGlobal {
		t.Errorf("late_local is at %d in the layout (first global %d)", i, l.firstGlobal)
	}
}

// TestDWARF reads the debug information from the model and compares it
// with what debug/elf reads from the file.
func TestDWARF(t *testing.T) {
	obj := compile(t, "testdata/prog.c", "-O2", "-g", "-ffunction-sections", "-fdata-sections")
	f, err := Open(obj)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.DWARF()
	if err != nil {
		t.Fatal(err)
	}
	ef, err := elf.Open(obj)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	want, err := ef.DWARF()
	if err != nil {
		t.Fatal(err)
	}
	g, w := entries(t, got), entries(t, want)
	if len(w) < 10 || !reflect.DeepEqual(g, w) {
		t.Errorf("%d entries from the model, %d from debug/elf; first difference %s", len(g), len(w), firstDiff(join(w), join(g)))
	}
}

func entries(t *testing.T, d *dwarf.Data) []string {
	t.Helper()
	var out []string
	r := d.Reader()
	for {
		e, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if e == nil {
			return out
		}
		var b bytes.Buffer
		b.WriteString(e.Tag.String())
		for _, f := range e.Field {
			b.WriteString(" " + f.Attr.String() + "=")
			b.WriteString(fmtVal(f.Val))
		}
		out = append(out, b.String())
	}
}

func fmtVal(v any) string {
	switch x := v.(type) {
	case []byte:
		return string(x)
	default:
		return fmt.Sprint(v)
	}
}

func join(xs []string) string {
	var b bytes.Buffer
	for _, x := range xs {
		b.WriteString(x + "\n")
	}
	return b.String()
}

// TestResolverImmediate finds a static flag that an instruction with an
// immediate operand after the PC-relative field reads.
func TestResolverImmediate(t *testing.T) {
	f, err := Open(compile(t, "testdata/imm.c", "-O2", "-ffunction-sections", "-fdata-sections", "-mcmodel=kernel", "-fno-PIE"))
	if err != nil {
		t.Fatal(err)
	}
	f.ResolveSectionRelocs()
	fn := f.Section(".text.test_and_set")
	found := false
	for _, rs := range f.RelaSections(fn) {
		for _, r := range rs.Relocs {
			if r.Sym.Type == elf.STT_SECTION && r.Sym.Section != nil && r.Sym.Section.Name == ".data.once" {
				t.Errorf("relocation at %#x still points at .data.once%+d", r.Offset, r.Addend)
			}
			found = found || r.Sym.Name == "flag"
		}
	}
	if !found {
		t.Error("test_and_set does not refer to flag by name")
	}
}

// TestResolverPastTheEnd names the array a pointer just past its end
// belongs to: without that, a function looping over a static table could
// not be extracted.
func TestResolverPastTheEnd(t *testing.T) {
	f, err := Open(compile(t, "testdata/end.c", "-O2", "-ffunction-sections", "-fdata-sections", "-mcmodel=kernel", "-fno-PIE"))
	if err != nil {
		t.Fatal(err)
	}
	fn := f.Section(".text.known")
	var ends int
	for _, rs := range f.RelaSections(fn) {
		for _, r := range rs.Relocs {
			if r.Sym.Type == elf.STT_SECTION && r.Sym.Section != nil && r.Sym.Section.Name == ".rodata.ids" && r.Addend+4 >= 14 {
				ends++
			}
		}
	}
	if ends == 0 {
		t.Skip("the compiler made no end pointer of ids")
	}
	f.ResolveSectionRelocs()
	for _, rs := range f.RelaSections(fn) {
		for _, r := range rs.Relocs {
			if r.Sym.Type == elf.STT_SECTION && r.Sym.Section != nil && r.Sym.Section.Name == ".rodata.ids" {
				t.Errorf("relocation at %#x still points at .rodata.ids%+d", r.Offset, r.Addend)
			}
		}
	}
}
