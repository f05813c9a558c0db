package kernel

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadConfig(t *testing.T) {
	c, err := ReadConfig(filepath.Join("testdata", "config"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.String("CONFIG_CC_VERSION_TEXT"); got != "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0" {
		t.Errorf("CC_VERSION_TEXT = %q", got)
	}
	for opt, want := range map[string]bool{"CONFIG_LIVEPATCH": true, "CONFIG_EXT4_FS": true, "CONFIG_EXT2_FS": false, "CONFIG_NOPE": false} {
		if c.Enabled(opt) != want {
			t.Errorf("Enabled(%s) = %v", opt, !want)
		}
	}
	if c["CONFIG_NR_CPUS"] != "8192" {
		t.Errorf("NR_CPUS = %q", c["CONFIG_NR_CPUS"])
	}
	if _, err := ReadConfig(filepath.Join("testdata", "missing")); err == nil {
		t.Error("a missing config reads")
	}
}

func TestReadExports(t *testing.T) {
	ex, err := ReadExports(filepath.Join("testdata", "Module.symvers"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Export{
		"phys_base":                     {Name: "phys_base", Module: "vmlinux"},
		"init_uts_ns":                   {Name: "init_uts_ns", Module: "vmlinux", GPL: true},
		"insert_resource_expand_to_fit": {Name: "insert_resource_expand_to_fit", Module: "vmlinux", GPL: true, Namespace: "CXL"},
		"jbd2_journal_start":            {Name: "jbd2_journal_start", Module: "jbd2"},
		"snd_hda_codec_new":             {Name: "snd_hda_codec_new", Module: "snd_hda_codec", GPL: true},
	}
	if len(ex) != len(want) {
		t.Errorf("%d exports, want %d", len(ex), len(want))
	}
	for name, w := range want {
		if ex[name] != w {
			t.Errorf("%s = %+v, want %+v", name, ex[name], w)
		}
	}
}

func TestModuleName(t *testing.T) {
	for in, want := range map[string]string{
		"fs/ext4/ext4": "ext4", "snd-hda-intel.ko.xz": "snd_hda_intel", "binfmt_misc.ko": "binfmt_misc", "livepatch-fix": "livepatch_fix",
	} {
		if got := ModuleName(in); got != want {
			t.Errorf("ModuleName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseSpec(t *testing.T) {
	if s := ParseSpec("running"); !s.Running || s.Release != "" {
		t.Errorf("running: %+v", s)
	}
	if s := ParseSpec("6.1.0-56-amd64=6.1.192-2"); s.Running || s.Release != "6.1.0-56-amd64=6.1.192-2" {
		t.Errorf("release: %+v", s)
	}
}

// table builds a Table from "name unit local" triples in lookup order.
func table(units []string, syms ...Symbol) *Table {
	t := &Table{Object: "vmlinux", Source: "test", Symbols: syms, Units: units}
	t.index()
	return t
}

func TestSymposWithUnits(t *testing.T) {
	// Two files called core.c define a static "show"; another file has a
	// global "show_all" and its own static "show".
	tab := table([]string{"core.c", "core.c", "other.c"},
		Symbol{Name: "show", Local: true, Unit: 0, Kind: KindFunc},
		Symbol{Name: "a_only", Local: true, Unit: 0, Kind: KindFunc},
		Symbol{Name: "show", Local: true, Unit: 1, Kind: KindFunc},
		Symbol{Name: "b_only", Local: true, Unit: 1, Kind: KindFunc},
		Symbol{Name: "show", Local: true, Unit: 2, Kind: KindFunc},
		Symbol{Name: "show_all", Local: false, Unit: -1, Kind: KindFunc},
		Symbol{Name: "counter", Local: true, Unit: 1, Kind: KindObject},
	)
	u := tab.Locate("core.c", []string{"show", "b_only", "counter"})
	for _, tc := range []struct {
		name  string
		local bool
		pos   int
		err   error
	}{
		{"show", true, 2, nil},
		{"counter", true, 0, nil},
		{"show_all", false, 0, nil},
		{"a_only", true, 0, ErrSymbolNotFound}, // only in the other core.c
		{"show", false, 0, ErrSymbolNotFound},  // no global of that name
		{"missing", true, 0, ErrSymbolNotFound},
	} {
		pos, err := u.Sympos(tc.name, tc.local)
		if pos != tc.pos || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
			t.Errorf("Sympos(%s, %v) = %d, %v; want %d, %v", tc.name, tc.local, pos, err, tc.pos, tc.err)
		}
	}
	// A unit whose locals match both files equally is ambiguous.
	amb := tab.Locate("core.c", []string{"show"})
	if _, err := amb.Sympos("show", true); !errors.Is(err, ErrAmbiguous) {
		t.Errorf("ambiguous unit: %v", err)
	}
}

func TestSymposByNeighbourhood(t *testing.T) {
	// kallsyms order, no units: of two static "show", the one surrounded
	// by the unit's other locals is the unit's.
	far := make([]Symbol, 0, 60)
	far = append(far, Symbol{Name: "show", Local: true, Unit: -1})
	for i := 0; i < 40; i++ {
		far = append(far, Symbol{Name: "filler" + strings.Repeat("x", i), Local: true, Unit: -1})
	}
	far = append(far, Symbol{Name: "mine1", Local: true, Unit: -1}, Symbol{Name: "show", Local: true, Unit: -1}, Symbol{Name: "mine2", Local: true, Unit: -1})
	tab := table(nil, far...)
	u := tab.Locate("core.c", []string{"show", "mine1", "mine2"})
	if pos, err := u.Sympos("show", true); pos != 2 || err != nil {
		t.Errorf("Sympos(show) = %d, %v; want 2", pos, err)
	}
}

func TestReadKallsyms(t *testing.T) {
	in := "ffffffff81000000 T _stext\nffffffff81000010 t show\nffffffff81000020 t show\nffffffff81000030 D data\nffffffffc0000000 t show\t[ext4]\n"
	tab, err := ReadKallsyms(strings.NewReader(in), "test")
	if err != nil {
		t.Fatal(err)
	}
	if len(tab.Symbols) != 4 || len(tab.Lookup("show")) != 2 || tab.Symbols[3].Kind != KindObject || tab.Symbols[0].Local {
		t.Errorf("table = %+v", tab.Symbols)
	}
	if _, err := ReadKallsyms(strings.NewReader("0000000000000000 T _stext\n"), "hidden"); !errors.Is(err, ErrNoSymbols) {
		t.Errorf("zeroed addresses: %v, want ErrNoSymbols", err)
	}
}

// TestSymposByBlocks finds a module object's static by the block its
// locals form in the module's symbol table: two objects with the same
// numbered statics (_rs.9, __func__.2), told apart only by the order of
// the rest, with labels (NOTYPE) between them that the objects' lists do
// not have. A block that lines up badly is no answer.
func TestSymposByBlocks(t *testing.T) {
	sym := func(name string, kind SymKind) Symbol { return Symbol{Name: name, Kind: kind, Local: true, Unit: -1} }
	mod := &Table{Object: "m", Source: "test", Blocks: true, Symbols: []Symbol{
		// a.o
		sym("a_helper", KindFunc), sym(".Lstart", KindOther), sym("_rs.9", KindObject), sym("__func__.2", KindObject), sym("shared", KindFunc),
		// b.o
		sym("shared", KindFunc), sym("_rs.9", KindObject), sym(".Lother", KindOther), sym("__func__.2", KindObject), sym("b_helper", KindFunc),
		{Name: "module_init", Kind: KindFunc, Unit: -1},
	}}
	mod.index()
	for _, tc := range []struct {
		order []string
		want  int
	}{
		{[]string{"a_helper", "_rs.9", "__func__.2", "shared"}, 1},
		{[]string{"shared", "_rs.9", "__func__.2", "b_helper"}, 2},
	} {
		u := mod.Locate("x.c", nil).Ordered(tc.order)
		for _, name := range []string{"_rs.9", "__func__.2", "shared"} {
			if pos, err := u.Sympos(name, true); pos != tc.want || err != nil {
				t.Errorf("order %v: Sympos(%s) = %d, %v; want %d", tc.order, name, pos, err, tc.want)
			}
		}
	}
	weak := mod.Locate("x.c", nil).Ordered([]string{"c1", "c2", "_rs.9", "c3", "c4"})
	if _, err := weak.Sympos("_rs.9", true); !errors.Is(err, ErrAmbiguous) {
		t.Errorf("a block that does not line up: %v, want ErrAmbiguous", err)
	}
}
