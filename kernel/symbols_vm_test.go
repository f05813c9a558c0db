package kernel_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/graft-live/graft/internal/fixtures"
	"github.com/graft-live/graft/internal/vmtest"
	"github.com/graft-live/graft/kernel"
	"github.com/graft-live/graft/vm"
)

// symposCase is a local symbol whose name occurs several times in vmlinux:
// its sympos from the -dbg vmlinux, and its offset from _stext.
type symposCase struct {
	Name   string `json:"name"`
	File   string `json:"file"`
	Sympos int    `json:"sympos"`
	Offset int64  `json:"offset"`
}

const guestSympos = "/sympos.json"

// TestSymposMatchesKallsyms computes, on the host, the sympos of duplicated
// local names from the -dbg vmlinux (by translation unit), and checks in
// the guest that the running kernel's /proc/kallsyms has that symbol at
// that position: the n-th symbol of the name is the one at the same offset
// from _stext.
func TestSymposMatchesKallsyms(t *testing.T) {
	vmtest.Run(t, guestCheckSympos, vmtest.WithFiles(hostSympos))
}

func hostSympos(t *testing.T) []vm.File {
	if testing.Short() {
		t.Skip("fetches the debug symbols")
	}
	tree := fixtures.Kernel(t, kernel.Image)
	c, err := kernel.OpenCache("")
	if err != nil {
		t.Fatal(err)
	}
	tg, err := c.Resolve(context.Background(), kernel.Spec{Release: tree.Release + "=" + tree.Version}, kernel.Image, nil)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := c.VmlinuxSymbols(context.Background(), tg, true)
	if err != nil {
		t.Fatal(err)
	}
	stext := tab.Lookup("_stext")
	if len(stext) != 1 {
		t.Fatalf("_stext: %+v", stext)
	}
	// The locals of each translation unit.
	locals := map[int][]string{}
	for _, s := range tab.Symbols {
		if s.Local && s.Unit >= 0 && s.Kind != kernel.KindOther {
			locals[s.Unit] = append(locals[s.Unit], s.Name)
		}
	}
	var cases []symposCase
	seen := map[string]bool{}
	for _, s := range tab.Symbols {
		if !s.Local || s.Unit < 0 || s.Kind != kernel.KindFunc || seen[s.Name] || len(tab.Lookup(s.Name)) < 2 {
			continue
		}
		seen[s.Name] = true
		file := tab.Units[s.Unit]
		pos, err := tab.Locate(file, locals[s.Unit]).Sympos(s.Name, true)
		if err != nil {
			continue // files that cannot be told apart by their locals
		}
		cases = append(cases, symposCase{Name: s.Name, File: file, Sympos: pos, Offset: int64(s.Addr - stext[0].Addr)})
	}
	if len(cases) < 100 {
		t.Fatalf("only %d duplicated local functions with a sympos", len(cases))
	}
	sort.Slice(cases, func(i, j int) bool { return cases[i].Name < cases[j].Name })
	b, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "sympos.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d duplicated local functions", len(cases))
	return []vm.File{{Host: p, Guest: guestSympos}}
}

func guestCheckSympos(t *testing.T) {
	b, err := os.ReadFile(guestSympos)
	if err != nil {
		t.Fatal(err)
	}
	var cases []symposCase
	if err := json.Unmarshal(b, &cases); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	byName := map[string][]uint64{}
	var stext uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 {
			continue // module symbols
		}
		addr, err := strconv.ParseUint(fields[0], 16, 64)
		if err != nil {
			t.Fatal(err)
		}
		byName[fields[2]] = append(byName[fields[2]], addr)
		if fields[2] == "_stext" {
			stext = addr
		}
	}
	if stext == 0 {
		t.Fatal("no _stext in /proc/kallsyms")
	}
	bad := 0
	for _, c := range cases {
		addrs := byName[c.Name]
		if c.Sympos < 1 || c.Sympos > len(addrs) {
			t.Errorf("%s of %s: sympos %d, but kallsyms has %d", c.Name, c.File, c.Sympos, len(addrs))
			bad++
			continue
		}
		if got := int64(addrs[c.Sympos-1] - stext); got != c.Offset {
			t.Errorf("%s of %s: the kernel's symbol %d is at _stext%+#x, the -dbg vmlinux's at _stext%+#x", c.Name, c.File, c.Sympos, got, c.Offset)
			bad++
		}
	}
	t.Logf("%d of %d sympos agree with /proc/kallsyms", len(cases)-bad, len(cases))
}
