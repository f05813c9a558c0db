package klp

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"debug/elf"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/graft-live/graft/elfobj"
	"github.com/graft-live/graft/internal/testenv"
)

// compile compiles testdata/unit.c as the kernel compiles objects for
// graft: one section per function and data object, __fentry__ calls
// recorded in __mcount_loc.
func compile(t *testing.T) *elfobj.File {
	t.Helper()
	testenv.NeedTool(t, "gcc")
	dir := t.TempDir()
	out := filepath.Join(dir, "unit.o")
	cmd := exec.Command("gcc", append(append([]string{"-c", "-o", out}, testenv.KernelCFLAGS...), filepath.Join("testdata", "unit.c"))...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, b)
	}
	f, err := elfobj.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// fakeResolver resolves like a kernel where ext_func is exported and
// everything else is reached by klp relocations.
type fakeResolver struct{ asked []string }

func (r *fakeResolver) Resolve(sym *elfobj.Symbol) (Ref, error) {
	r.asked = append(r.asked, sym.Name)
	if sym.Name == "ext_func" || sym.Name == "__fentry__" {
		return Ref{Object: "vmlinux", Name: sym.Name, Extern: true}, nil
	}
	return Ref{Object: "vmlinux", Name: sym.Name, Sympos: 2}, nil
}

var testLayout = &Layout{Specials: []Special{
	{Name: "__mcount_loc", EntSize: 8},
	{Name: "__graft_table", EntSize: 12},
}}

func extractChanged(t *testing.T) (*Extracted, *fakeResolver) {
	t.Helper()
	res := &fakeResolver{}
	out, err := Extract(&Unit{
		Name: "unit.o", Patched: compile(t), Carry: []string{"changed"},
		Redirects: []Redirect{{Symbol: "changed", Object: "vmlinux", OldName: "changed", Sympos: 0}},
		Resolver:  res, Layout: testLayout, Prefix: "graft0_",
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, res
}

func TestExtract(t *testing.T) {
	out, res := extractChanged(t)
	f := out.Object
	if f.Section(".text.changed") == nil || f.Section(".text.untouched") != nil || f.Section(".text.helper") != nil {
		t.Errorf("sections: want .text.changed only, have %v", sectionNames(f))
	}
	if s := f.Symbol("changed"); s == nil || s.Bind != elf.STB_LOCAL {
		t.Errorf("the replaced function must be carried as a local symbol: %+v", s)
	}
	if s := f.Symbol("graft0_0"); s == nil || s.Bind != elf.STB_GLOBAL || s.Type != elf.STT_FUNC || s.Section != f.Symbol("changed").Section {
		t.Errorf("alias graft0_0 = %+v", s)
	}
	if len(out.Funcs) != 1 || out.Funcs[0] != (Func{Object: "vmlinux", OldName: "changed", Sympos: 0, New: "graft0_0"}) {
		t.Errorf("funcs = %+v", out.Funcs)
	}
	// What the function uses and the module does not carry.
	want := map[string]bool{".klp.sym.vmlinux.helper,2": true, ".klp.sym.vmlinux.counter,2": true, ".klp.sym.vmlinux.ext_data,2": true, "ext_func": true}
	for _, s := range f.Symbols {
		if s.Section == nil && s.Shndx == elf.SHN_UNDEF && s.Name != "" && s.Name != "__fentry__" {
			if !want[s.Name] {
				t.Errorf("unexpected undefined symbol %s", s.Name)
			}
			delete(want, s.Name)
		}
	}
	if len(want) > 0 {
		t.Errorf("missing undefined symbols %v (asked %v)", want, res.asked)
	}
	// The string literal comes along; the other function's does not.
	var strs []byte
	for _, s := range f.Sections {
		if s.Flags&elf.SHF_STRINGS != 0 {
			strs = append(strs, s.Data...)
		}
	}
	if !bytes.Contains(strs, []byte("changed string")) || bytes.Contains(strs, []byte("untouched string")) {
		t.Errorf("strings carried: %q", strs)
	}
	// Special sections keep the entries of the carried function only.
	for _, name := range []string{"__mcount_loc", "__graft_table"} {
		sec := f.Section(name)
		size := testLayout.Special(name).EntSize
		if sec == nil || len(sec.Data) != size {
			t.Fatalf("%s: want one entry", name)
		}
		rel := f.RelaSections(sec)
		if len(rel) != 1 || len(rel[0].Relocs) == 0 || rel[0].Relocs[0].Sym.Section != f.Symbol("changed").Section {
			t.Errorf("%s entry does not point at changed: %+v", name, rel)
		}
	}
	if tab := f.Section("__graft_table"); binary.LittleEndian.Uint32(tab.Data[4:]) != 7 {
		t.Errorf("__graft_table kept the wrong entry: %x", tab.Data)
	}
	linkable(t, f)
}

// linkable writes f and links it with ld -r, which refuses malformed
// objects.
func linkable(t *testing.T, f *elfobj.File) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "x.o")
	if err := f.WriteFile(p); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ld", "-r", "-o", filepath.Join(dir, "y.o"), p).CombinedOutput(); err != nil {
		t.Fatalf("ld -r: %v\n%s", err, out)
	}
}

func sectionNames(f *elfobj.File) []string {
	var out []string
	for _, s := range f.Sections {
		out = append(out, s.Name)
	}
	return out
}

func TestExtractErrors(t *testing.T) {
	t.Run("unknown special section", func(t *testing.T) {
		_, err := Extract(&Unit{Name: "unit.o", Patched: compile(t), Carry: []string{"changed"}, Resolver: &fakeResolver{},
			Layout: &Layout{Specials: []Special{{Name: "__mcount_loc", EntSize: 8}}}})
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "__graft_table") {
			t.Errorf("err = %v, want ErrUnsupported naming __graft_table", err)
		}
	})
	t.Run("missing symbol", func(t *testing.T) {
		_, err := Extract(&Unit{Name: "unit.o", Patched: compile(t), Carry: []string{"nonexistent"}, Resolver: &fakeResolver{}, Layout: testLayout})
		if err == nil || !strings.Contains(err.Error(), "nonexistent") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestConvert(t *testing.T) {
	out, _ := extractChanged(t)
	// A linked module, as read from its file, has .gnu.linkonce.this_module.
	out.Object.AddSection(&elfobj.Section{Name: ".gnu.linkonce.this_module", Type: elf.SHT_PROGBITS, Flags: elf.SHF_ALLOC | elf.SHF_WRITE, Addralign: 64, Data: make([]byte, 64)})
	var buf bytes.Buffer
	if err := out.Object.Write(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := elfobj.Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	conv, err := Convert(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(conv.Symbols) != 3 || conv.Relocations < 3 {
		t.Errorf("conversion = %+v", conv)
	}
	for _, name := range conv.Symbols {
		s := f.Symbol(name)
		if s.Shndx != elfobj.SHN_LIVEPATCH || s.Section != nil {
			t.Errorf("%s: shndx %#x", name, s.Shndx)
		}
	}
	ks := f.Section(".klp.rela.vmlinux..text.changed")
	if ks == nil || ks.Type != elf.SHT_RELA || ks.Flags&elfobj.SHF_RELA_LIVEPATCH == 0 || ks.Flags&elf.SHF_INFO_LINK == 0 || ks.Info != f.Section(".text.changed") {
		t.Fatalf("klp relocation section = %+v (sections %v)", ks, sectionNames(f))
	}
	for _, s := range f.Sections {
		if s.Type == elf.SHT_RELA && s.Flags&elfobj.SHF_RELA_LIVEPATCH == 0 {
			for _, r := range s.Relocs {
				if strings.HasPrefix(r.Sym.Name, klpSymPrefix) {
					t.Errorf("%s still relocates against %s", s.Name, r.Sym.Name)
				}
			}
		}
	}
	// What the kernel's readelf makes of it.
	p := filepath.Join(t.TempDir(), "m.ko")
	if err := f.WriteFile(p); err != nil {
		t.Fatal(err)
	}
	b, err := exec.Command("readelf", "-W", "-S", "-s", p).CombinedOutput()
	if err != nil || bytes.Contains(b, []byte("Warning")) {
		t.Fatalf("readelf: %v\n%s", err, b)
	}
	if !bytes.Contains(b, []byte("OS [0xff20] .klp.sym.vmlinux.counter,2")) {
		t.Errorf("readelf does not show the livepatch symbol:\n%s", b)
	}
	if _, err := Convert(compile(t), nil); !errors.Is(err, ErrNotLinked) {
		t.Errorf("an unlinked object: %v, want ErrNotLinked", err)
	}
}

func TestKlpSymObject(t *testing.T) {
	for name, want := range map[string]string{
		".klp.sym.vmlinux.saved_command_line,0":  "vmlinux",
		".klp.sym.ext4.ext4_fill_super.isra.0,2": "ext4",
		".klp.sym.vmlinux.foo":                   "",
		".klp.sym.vmlinux.foo,x":                 "",
		".klp.sym..foo,0":                        "",
	} {
		got, err := klpSymObject(name)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("klpSymObject(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
}

func TestGlue(t *testing.T) {
	src := string(Glue(&Patch{
		Description: "test",
		Funcs: []Func{
			{Object: "ext4", OldName: "ext4_fill_super", Sympos: 0, New: "graft1_0"},
			{Object: "vmlinux", OldName: "cmdline_proc_show", Sympos: 2, New: "graft0_0"},
		},
		Replace:    true,
		Namespaces: []string{"CRYPTO_INTERNAL"},
	}))
	for _, want := range []string{
		`.old_name = "cmdline_proc_show", .new_func = graft0_0, .old_sympos = 2`,
		`.old_name = "ext4_fill_super", .new_func = graft1_0, .old_sympos = 0`,
		`{ .name = NULL, .funcs = graft_funcs_0 }`,
		`{ .name = "ext4", .funcs = graft_funcs_1 }`,
		`.replace = true`, `MODULE_INFO(livepatch, "Y")`, `MODULE_IMPORT_NS(CRYPTO_INTERNAL)`, `klp_enable_patch(&graft_patch)`,
	} {
		if !strings.Contains(src, want) {
			t.Errorf("glue lacks %q:\n%s", want, src)
		}
	}
	if strings.Index(src, "graft_funcs_0[]") > strings.Index(src, "graft_funcs_1[]") {
		t.Errorf("vmlinux must come first:\n%s", src)
	}
}

// TestSign signs with a key made here and checks the signature the way
// the kernel reads it: trailer, PKCS#7 over the unsigned module.
func TestSign(t *testing.T) {
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "graft test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pemFile := filepath.Join(dir, "signing_key.pem")
	var b bytes.Buffer
	pem.Encode(&b, &pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(key))})
	pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(pemFile, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSigner(pemFile, "", "sha256")
	if err != nil {
		t.Fatal(err)
	}
	module := []byte("\x7fELF a module's bytes")
	signed, err := s.Sign(module)
	if err != nil {
		t.Fatal(err)
	}
	rest, ok := bytes.CutSuffix(signed, []byte(signatureMagic))
	if !ok {
		t.Fatal("no signature marker")
	}
	trailer := rest[len(rest)-12:]
	sigLen := int(binary.BigEndian.Uint32(trailer[8:]))
	if trailer[2] != pkeyIDPKCS7 || sigLen <= 0 || sigLen > len(rest)-12 {
		t.Fatalf("trailer %x", trailer)
	}
	sig := rest[len(rest)-12-sigLen : len(rest)-12]
	if !bytes.Equal(rest[:len(rest)-12-sigLen], module) {
		t.Fatal("the module's bytes changed")
	}
	p7, err := pkcs7.Parse(sig)
	if err != nil {
		t.Fatal(err)
	}
	p7.Content = module
	if err := p7.Verify(); err != nil {
		t.Errorf("verify: %v", err)
	}
	p7.Content = []byte("other bytes")
	if err := p7.Verify(); err == nil {
		t.Error("the signature verifies other content")
	}
	if _, err := s.Sign(signed); !errors.Is(err, ErrSigned) {
		t.Errorf("signing twice: %v, want ErrSigned", err)
	}
	if _, err := LoadSigner(pemFile, "", "md5"); err == nil {
		t.Error("md5 accepted")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// compileSmall compiles a testdata file with the few flags that make it
// look like kernel code to Extract: one section per function and data
// object, the kernel's code model.
func compileSmall(t *testing.T, name string, flags ...string) *elfobj.File {
	t.Helper()
	testenv.NeedTool(t, "gcc")
	out := filepath.Join(t.TempDir(), strings.TrimSuffix(name, ".c")+".o")
	args := append([]string{"-c", "-O2", "-ffunction-sections", "-fdata-sections", "-mcmodel=kernel", "-fno-PIE", "-fno-asynchronous-unwind-tables", "-o", out}, flags...)
	cmd := exec.Command("gcc", append(args, filepath.Join("testdata", name))...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, b)
	}
	f, err := elfobj.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestRuntimeConstant carries code with a runtime constant: the movabs of
// the placeholder becomes a load of the variable through a relocation.
func TestRuntimeConstant(t *testing.T) {
	ex, err := Extract(&Unit{Name: "runtime.o", Patched: compileSmall(t, "runtime.c"), Carry: []string{"below_limit"}, Resolver: &fakeResolver{}, Layout: testLayout, Prefix: "g_"})
	if err != nil {
		t.Fatal(err)
	}
	text := ex.Object.Section(".text.below_limit")
	if bytes.Contains(text.Data, []byte{0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01}) {
		t.Errorf("the placeholder is still there: % x", text.Data)
	}
	found := false
	for _, rs := range ex.Object.RelaSections(text) {
		for _, r := range rs.Relocs {
			if r.Sym.Name == ".klp.sym.vmlinux.LIMIT,2" && r.Type == elf.R_X86_64_PC32 && r.Addend == -4 {
				found = true
				if text.Data[r.Offset-1]&0xc7 != 0x05 || text.Data[r.Offset-2] != 0x8b {
					t.Errorf("no mov from memory before the relocation: % x", text.Data[r.Offset-3:r.Offset])
				}
			}
		}
	}
	if !found {
		t.Error("no relocation to LIMIT")
	}
	for _, s := range ex.Object.Sections {
		if strings.HasPrefix(s.Name, "runtime_ptr_") {
			t.Errorf("%s carried", s.Name)
		}
	}
}

// noCounterpart is a resolver that cannot match one local object with the
// running kernel's.
type noCounterpart struct {
	fakeResolver
	name string
}

func (r *noCounterpart) Resolve(sym *elfobj.Symbol) (Ref, error) {
	if strings.HasPrefix(sym.Name, r.name+".") {
		return Ref{}, fmt.Errorf("%w: %s matches 2 symbols", ErrNoCounterpart, sym.Name)
	}
	return r.fakeResolver.Resolve(sym)
}

// TestExtractCopiesUnmatchedLocal carries a copy of a static variable the
// resolver cannot match, and warns that its state starts over.
func TestExtractCopiesUnmatchedLocal(t *testing.T) {
	res := &noCounterpart{name: "warned"}
	f := compile(t)
	f.ResolveSectionRelocs()
	out, err := Extract(&Unit{Name: "unit.o", Patched: f, Carry: []string{"once"}, Resolver: res, Layout: testLayout, Prefix: "g_"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(out.Carried, func(s string) bool { return strings.HasPrefix(s, "warned.") }) {
		t.Errorf("carried %v, want warned among them", out.Carried)
	}
	if len(out.Warnings) != 1 || out.Warnings[0].ID != "static-local-copied" || !strings.Contains(out.Warnings[0].Message, "warned") {
		t.Errorf("warnings %+v, want one static-local-copied about warned", out.Warnings)
	}
	for _, r := range out.Refs {
		if strings.HasPrefix(r.Name, "warned") {
			t.Errorf("warned is reached in the running kernel too: %+v", r)
		}
	}
}

// TestExtractBugEntryReference carries a function that passes the address
// of its own __bug_table entry (Linux 7's WARN): the reference must point
// at the entry's place in the module's table, which keeps only that entry.
func TestExtractBugEntryReference(t *testing.T) {
	layout := &Layout{Specials: []Special{{Name: "__bug_table", EntSize: 8}}}
	ex, err := Extract(&Unit{Name: "bugref.o", Patched: compileSmall(t, "bugref.c"), Carry: []string{"second"}, Resolver: &fakeResolver{}, Layout: layout, Prefix: "g_"})
	if err != nil {
		t.Fatal(err)
	}
	f := ex.Object
	table := f.Section("__bug_table")
	if table == nil || len(table.Data) != 8 {
		t.Fatalf("__bug_table: want the one entry of second, have %v", table)
	}
	text := f.Section(".text.second")
	var ref *elfobj.Reloc
	for _, rs := range f.RelaSections(text) {
		for i, r := range rs.Relocs {
			if r.Sym.Section == table {
				ref = &rs.Relocs[i]
			}
		}
	}
	// lea 2f(%rip): the entry at offset 0, less the 4 bytes of the
	// displacement.
	if ref == nil || ref.Type != elf.R_X86_64_PC32 || ref.Addend != -4 {
		t.Errorf("the lea of second does not point at the module's entry: %+v", ref)
	}
	linkable(t, f)
}

// TestExtractUbsanData carries one of two functions with UBSAN checks: its
// own check record comes along; the other function's record, which points
// at the same file name string, is neither carried nor taken for entries of
// an unknown special section.
func TestExtractUbsanData(t *testing.T) {
	ex, err := Extract(&Unit{Name: "ubsan.o", Patched: compileSmall(t, "ubsan.c", "-fsanitize=shift"), Carry: []string{"shift_a", "shift_a.cold"}, Resolver: &fakeResolver{}, Layout: testLayout, Prefix: "g_"})
	if err != nil {
		t.Fatal(err)
	}
	var records []string
	for _, s := range ex.Object.Sections {
		if strings.HasPrefix(s.Name, ".data..Lubsan_data") {
			records = append(records, s.Name)
		}
	}
	if len(records) != 1 {
		t.Errorf("carried UBSAN records %v, want shift_a's only (sections %v)", records, sectionNames(ex.Object))
	}
	if len(ex.Notes) != 0 {
		t.Errorf("notes %q, want none", ex.Notes)
	}
	linkable(t, ex.Object)
}
