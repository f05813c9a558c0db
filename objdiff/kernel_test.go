package objdiff

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/graft-live/graft/internal/fixtures"
	"github.com/graft-live/graft/kbuild"
)

// kernelTree prepares the default Debian kernel's source for compiling
// single objects.
func kernelTree(t *testing.T) *kbuild.Tree {
	t.Helper()
	if testing.Short() {
		t.Skip("compiles kernel objects")
	}
	return fixtures.PreparedTree(t)
}

func changedNames(res *Result) []string {
	var out []string
	for _, c := range res.Changes {
		out = append(out, c.Name+":"+string(c.Status))
	}
	sort.Strings(out)
	return out
}

// TestKernelObjects compiles real kernel objects before and after small
// changes with the kernel's exact flags and checks the changed sets.
func TestKernelObjects(t *testing.T) {
	tree := kernelTree(t)
	tests := []struct {
		name    string
		obj     string
		old     string
		new     string
		want    []string // exact, or
		wantAny []string // every change must be one of these, and the first must be there
	}{
		{
			name: "cmdline_proc_show body",
			obj:  "fs/proc/cmdline.o",
			old:  "\tseq_putc(m, '\\n');",
			new:  "\tseq_puts(m, \" graft\");\n\tseq_putc(m, '\\n');",
			want: []string{"cmdline_proc_show:changed"},
		},
		{
			name: "lines moved",
			obj:  "fs/proc/cmdline.o",
			old:  "#include <linux/seq_file.h>\n",
			new:  "#include <linux/seq_file.h>\n\n/*\n * comment lines moving everything down\n */\n",
			want: nil,
		},
		{
			name:    "static helper inlined into its caller",
			obj:     "fs/proc/meminfo.o",
			old:     "seq_put_decimal_ull_width(m, s, num << (PAGE_SHIFT - 10), 8);",
			new:     "seq_put_decimal_ull_width(m, s, num << (PAGE_SHIFT - 10), 9);",
			wantAny: []string{"meminfo_proc_show:changed", "show_val_kb:changed"},
		},
		{
			name: "string literal",
			obj:  "fs/proc/loadavg.o",
			old:  `%u/%d %d\n"`,
			new:  `%u/%d %d \n"`,
			want: []string{"loadavg_proc_show:changed"},
		},
		{
			name: "__init code",
			obj:  "fs/proc/cmdline.o",
			old:  `proc_create_single("cmdline", 0, NULL, cmdline_proc_show);`,
			new:  `proc_create_single("cmdline", 0444, NULL, cmdline_proc_show);`,
			want: []string{"proc_cmdline_init:changed"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := filepath.Join(tree.Dir, strings.TrimSuffix(tc.obj, ".o")+".c")
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), tc.old) {
				t.Fatalf("%s does not contain %q", src, tc.old)
			}
			patched := strings.Replace(string(b), tc.old, tc.new, 1)
			a, p, err := tree.CompilePair(context.Background(), tc.obj, []byte(patched), t.TempDir(), nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := CompareFiles(a, p)
			if err != nil {
				t.Fatal(err)
			}
			got := changedNames(res)
			t.Logf("changes: %+v", res.Changes)
			if tc.wantAny == nil {
				if strings.Join(got, ",") != strings.Join(tc.want, ",") {
					t.Errorf("changed %v, want %v", got, tc.want)
				}
				return
			}
			allowed := map[string]bool{}
			for _, w := range tc.wantAny {
				allowed[w] = true
			}
			found := false
			for _, g := range got {
				if !allowed[g] {
					t.Errorf("unexpected change %s (allowed %v)", g, tc.wantAny)
				}
				found = found || g == tc.wantAny[0]
			}
			if !found {
				t.Errorf("changed %v, want %s among them", got, tc.wantAny[0])
			}
		})
	}
	if b, _ := os.ReadFile(filepath.Join(tree.Dir, "fs/proc/cmdline.c")); strings.Contains(string(b), "graft") {
		t.Error("the tree's source was not restored")
	}
}

// TestKernelNoFalsePositives compiles every object of fs/proc twice from
// the same source: objdiff must find nothing.
func TestKernelNoFalsePositives(t *testing.T) {
	tree := kernelTree(t)
	objs := procObjects(t, tree)
	if len(objs) < 20 {
		t.Fatalf("only %d objects in fs/proc", len(objs))
	}
	for _, obj := range objs {
		src := filepath.Join(tree.Dir, strings.TrimSuffix(obj, ".o")+".c")
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		a, p, err := tree.CompilePair(context.Background(), obj, b, t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := CompareFiles(a, p)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Changes) != 0 || len(res.Errors) != 0 {
			t.Errorf("%s compiled twice: %+v", obj, res)
		}
	}
}

// procObjects lists the objects that fs/proc builds in this configuration.
func procObjects(t testing.TB, tree *kbuild.Tree) []string {
	srcs, _ := filepath.Glob(filepath.Join(tree.Dir, "fs/proc/*.c"))
	skip := map[string]bool{"nommu.c": true, "task_nommu.c": true, "vmcore.c": true, "kcore.c": true, "proc_tty.c": false}
	var objs []string
	for _, s := range srcs {
		if skip[filepath.Base(s)] {
			continue
		}
		objs = append(objs, "fs/proc/"+strings.TrimSuffix(filepath.Base(s), ".c")+".o")
	}
	return objs
}
