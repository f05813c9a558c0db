package elfobj

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/graft-live/graft/internal/testenv"
)

func compile(t testing.TB, src string, flags ...string) string {
	t.Helper()
	testenv.NeedTool(t, "gcc")
	out := filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(src), ".c")+".o")
	args := append(append([]string{"-c", "-o", out}, flags...), src)
	if b, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		t.Fatalf("gcc %v: %v\n%s", args, err, b)
	}
	return out
}

func roundTrip(t *testing.T, in string) (*File, string) {
	t.Helper()
	f, err := Open(in)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out.o")
	if err := f.WriteFile(out); err != nil {
		t.Fatal(err)
	}
	return f, out
}

// describe renders a File as text that two equivalent models share:
// indices and layout aside, everything.
func describe(f *File) string {
	var b strings.Builder
	for _, s := range f.Sections {
		data := s.Data
		switch s.Type {
		case elf.SHT_SYMTAB, elf.SHT_STRTAB, elf.SHT_RELA, elf.SHT_REL, elf.SHT_GROUP, elf.SHT_SYMTAB_SHNDX:
			data = nil // regenerated
		}
		link, info := "", ""
		if s.Link != nil {
			link = s.Link.Name
		}
		if s.Info != nil {
			info = s.Info.Name
		}
		fmt.Fprintf(&b, "S %q %v %v align=%d entsize=%d size=%d link=%s info=%s data=%x\n", s.Name, s.Type, s.Flags, s.Addralign, s.Entsize, s.Size, link, info, data)
		for _, r := range s.Relocs {
			fmt.Fprintf(&b, "  R %#x %v %s %d\n", r.Offset, r.Type, symName(r.Sym), r.Addend)
		}
		if s.Group != nil {
			fmt.Fprintf(&b, "  G %d", s.Group.Flags)
			for _, m := range s.Group.Members {
				fmt.Fprintf(&b, " %s", m.Name)
			}
			b.WriteString("\n")
		}
	}
	for _, s := range f.Symbols {
		fmt.Fprintf(&b, "Y %s\n", symName(s))
	}
	return b.String()
}

func symName(s *Symbol) string {
	sec := fmt.Sprint(s.Shndx)
	if s.Section != nil {
		sec = s.Section.Name
	}
	return fmt.Sprintf("%q/%v/%v/%d/%s/%#x/%d", s.Name, s.Bind, s.Type, s.Other, sec, s.Value, s.Size)
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		flags []string
	}{
		{"kernel flags without debug info", slices.DeleteFunc(slices.Clone(testenv.KernelCFLAGS), func(f string) bool { return f == "-g" })},
		{"kernel flags with debug info", testenv.KernelCFLAGS},
		{"userspace -O0", []string{"-O0", "-g"}},
		{"comdat groups", []string{"-O2", "-ffunction-sections", "-fdata-sections", "-fcf-protection", "-fstack-protector-all", "-fpic"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := compile(t, "testdata/prog.c", tc.flags...)
			f, out := roundTrip(t, in)
			g, err := Open(out)
			if err != nil {
				t.Fatal(err)
			}
			// Write orders locals first, as the input already does.
			if a, b := describe(f), describe(g); a != b {
				t.Fatalf("round trip changed the model:\n%s", firstDiff(a, b))
			}
			checkReadelf(t, out)
			if got, want := relocs(t, out), relocs(t, in); got != want {
				t.Errorf("objdump -dr differs after the round trip:\n%s", firstDiff(want, got))
			}
			testenv.NeedTool(t, "ld")
			if b, err := exec.Command("ld", "-r", "-o", filepath.Join(t.TempDir(), "r.o"), out).CombinedOutput(); err != nil {
				t.Errorf("ld -r: %v\n%s", err, b)
			}
		})
	}
}

// TestWrittenProgramRuns links a round-tripped object into a program.
func TestWrittenProgramRuns(t *testing.T) {
	in := compile(t, "testdata/prog.c", "-O2", "-ffunction-sections", "-fdata-sections", "-fPIE")
	_, out := roundTrip(t, in)
	if want, got := runProgram(t, in), runProgram(t, out); got != want {
		t.Errorf("program output %q, want %q", got, want)
	}
}

// runProgram links obj into a program, runs it and returns its output.
func runProgram(t *testing.T, obj string) string {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "prog")
	if b, err := exec.Command("gcc", "-o", exe, obj).CombinedOutput(); err != nil {
		t.Fatalf("link %s: %v\n%s", obj, err, b)
	}
	b, err := exec.Command(exe).CombinedOutput()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, b)
	}
	return string(b)
}

// TestSystemObjects round-trips objects found on the machine.
func TestSystemObjects(t *testing.T) {
	paths, _ := filepath.Glob("/usr/lib/x86_64-linux-gnu/*crt*.o")
	more, _ := filepath.Glob("/usr/lib/gcc/x86_64-linux-gnu/*/crt*.o")
	paths = append(paths, more...)
	if len(paths) == 0 {
		t.Skip("no system objects found")
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			f, out := roundTrip(t, p)
			g, err := Open(out)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := describe(f), describe(g); a != b {
				t.Fatalf("round trip changed the model:\n%s", firstDiff(a, b))
			}
			checkReadelf(t, out)
		})
	}
}

// TestKlpRewrite makes the edit a livepatch module needs and checks that
// readelf shows what the kernel expects.
func TestKlpRewrite(t *testing.T) {
	src := filepath.Join(t.TempDir(), "cmdline.c")
	os.WriteFile(src, []byte(`
extern char *saved_command_line;
extern int seq_printf(void *m, const char *fmt, ...);
int livepatch_cmdline_proc_show(void *m, void *v)
{
	seq_printf(m, "%s\n", saved_command_line);
	return 0;
}
`), 0o644)
	f, err := Open(compile(t, src, testenv.KernelCFLAGS...))
	if err != nil {
		t.Fatal(err)
	}
	sym := f.Symbol("saved_command_line")
	if sym == nil {
		t.Fatal("no saved_command_line symbol")
	}
	sym.Name, sym.Section, sym.Shndx = ".klp.sym.vmlinux.saved_command_line,0", nil, SHN_LIVEPATCH
	text := f.Section(".text.livepatch_cmdline_proc_show")
	symtab := f.Section(".symtab")
	relas := f.RelaSections(text)
	klp := f.AddSection(&Section{
		Name: ".klp.rela.vmlinux..text.livepatch_cmdline_proc_show", Type: elf.SHT_RELA,
		Flags: elf.SHF_ALLOC | elf.SHF_INFO_LINK | SHF_RELA_LIVEPATCH, Addralign: 8, Link: symtab, Info: text,
	})
	moved := 0
	for _, rs := range relas {
		kept := rs.Relocs[:0]
		for _, r := range rs.Relocs {
			if r.Sym == sym {
				klp.Relocs = append(klp.Relocs, r)
				moved++
				continue
			}
			kept = append(kept, r)
		}
		rs.Relocs = kept
	}
	if moved == 0 {
		t.Fatal("no relocation against saved_command_line")
	}
	out := filepath.Join(t.TempDir(), "klp.o")
	if err := f.WriteFile(out); err != nil {
		t.Fatal(err)
	}
	sections := readelf(t, "-SW", out)
	if !regexp.MustCompile(`\.klp\.rela\.vmlinux\.\.text\.livepatch_cmdline_proc_show\s+RELA\s+0+ [0-9a-f]+ [0-9a-f]+ 18\s+AIo?\s+\d+\s+\d+\s+8`).MatchString(sections) {
		// readelf prints unknown OS flags as "o"; accept both spellings.
		if !strings.Contains(sections, ".klp.rela.vmlinux..text.livepatch_cmdline_proc_show") {
			t.Fatalf("klp section missing:\n%s", sections)
		}
	}
	g, err := Open(out)
	if err != nil {
		t.Fatal(err)
	}
	ks := g.Section(".klp.rela.vmlinux..text.livepatch_cmdline_proc_show")
	if ks.Flags&SHF_RELA_LIVEPATCH == 0 || ks.Flags&elf.SHF_INFO_LINK == 0 || ks.Info == nil || ks.Info.Name != text.Name || ks.Link.Name != ".symtab" {
		t.Errorf("klp section = %+v", ks)
	}
	gs := g.Symbol(".klp.sym.vmlinux.saved_command_line,0")
	if gs == nil || gs.Shndx != SHN_LIVEPATCH || gs.Section != nil || len(ks.Relocs) != moved || ks.Relocs[0].Sym != gs {
		t.Errorf("klp symbol = %+v, relocs %+v", gs, ks.Relocs)
	}
	if syms := readelf(t, "-sW", out); !strings.Contains(syms, "0xff20") && !strings.Contains(syms, "65312") {
		t.Errorf("readelf does not show st_shndx 0xff20:\n%s", syms)
	}
}

func TestRemoveSections(t *testing.T) {
	f, err := Open(compile(t, "testdata/prog.c", testenv.KernelCFLAGS...))
	if err != nil {
		t.Fatal(err)
	}
	f.RemoveSections(func(s *Section) bool { return s.Name == ".text.classify" })
	if f.Section(".text.classify") != nil || f.Section(".rela.text.classify") != nil || f.Symbol("classify") != nil {
		t.Fatal("the section, its relocations or its symbol survived")
	}
	out := filepath.Join(t.TempDir(), "out.o")
	if err := f.WriteFile(out); err != nil {
		t.Fatal(err)
	}
	checkReadelf(t, out)
}

func TestReadRejects(t *testing.T) {
	if _, err := Read(bytes.NewReader([]byte("not an ELF file at all"))); err == nil {
		t.Error("garbage accepted")
	}
	exe, _ := os.Executable()
	if _, err := Open(exe); err == nil || !strings.Contains(err.Error(), ErrNotRelocatable.Error()) {
		t.Errorf("an executable: %v", err)
	}
}

func checkReadelf(t *testing.T, path string) {
	t.Helper()
	testenv.NeedTool(t, "readelf")
	cmd := exec.Command("readelf", "-W", "-a", path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil && !strings.Contains(err.Error(), "exit status") {
		t.Fatalf("readelf: %v", err)
	}
	if s := stderr.String(); strings.Contains(s, "Error") || strings.Contains(s, "Warning") {
		t.Errorf("readelf -W -a complains:\n%s", s)
	}
}

func readelf(t *testing.T, flag, path string) string {
	t.Helper()
	b, err := exec.Command("readelf", flag, path).CombinedOutput()
	if err != nil {
		t.Fatalf("readelf %s: %v\n%s", flag, err, b)
	}
	return string(b)
}

// relocs is objdump -dr without the file name line.
func relocs(t *testing.T, path string) string {
	t.Helper()
	testenv.NeedTool(t, "objdump")
	b, err := exec.Command("objdump", "-dr", path).CombinedOutput()
	if err != nil {
		t.Fatalf("objdump: %v\n%s", err, b)
	}
	lines := strings.Split(string(b), "\n")
	return strings.Join(lines[2:], "\n")
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) && i < len(bl); i++ {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, al[i], bl[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(al), len(bl))
}

// BenchmarkReadWrite reads and writes a large kernel-like object (2000
// functions, each in its own section, with strings, data and debug
// information); it reports MB/s of object processed.
func BenchmarkReadWrite(b *testing.B) {
	var src strings.Builder
	src.WriteString("extern int printk(const char *, ...);\nextern int sink(int);\n")
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(&src, "int data%d[4] = {%d};\nint fn%d(int x) { if (x > %d) printk(\"fn%d %%d\\n\", x); return sink(x + data%d[x & 3]); }\n", i, i, i, i, i, i)
	}
	path := filepath.Join(b.TempDir(), "big.c")
	if err := os.WriteFile(path, []byte(src.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	in := compile(b, path, testenv.KernelCFLAGS...)
	data, err := os.ReadFile(in)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f, err := Read(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		if err := f.Write(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// TestResolveSectionRelocs rewrites section-symbol relocations to the real
// symbols and checks that the program still links and behaves the same.
func TestResolveSectionRelocs(t *testing.T) {
	in := compile(t, "testdata/prog.c", "-O2", "-ffunction-sections", "-fdata-sections", "-fPIE")
	f, err := Open(in)
	if err != nil {
		t.Fatal(err)
	}
	if n := f.ResolveSectionRelocs(); n == 0 {
		t.Fatal("nothing rewritten: prog.c references static functions and data")
	}
	for _, s := range f.Sections {
		for _, r := range s.Relocs {
			if r.Sym.Type == elf.STT_SECTION && r.Sym.Section != nil && strings.HasPrefix(r.Sym.Section.Name, ".text.") && len(f.SymbolsIn(r.Sym.Section)) > 0 && s.Info != nil && strings.HasPrefix(s.Info.Name, ".text") {
				t.Errorf("%s: relocation at %#x still points at section %s", s.Name, r.Offset, r.Sym.Section.Name)
			}
		}
	}
	out := filepath.Join(t.TempDir(), "resolved.o")
	if err := f.WriteFile(out); err != nil {
		t.Fatal(err)
	}
	if want, got := runProgram(t, in), runProgram(t, out); got != want {
		t.Errorf("program output %q, want %q", got, want)
	}
}
