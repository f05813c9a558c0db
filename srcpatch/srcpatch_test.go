package srcpatch

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

const hello = `#include <stdio.h>

static int helper(void)
{
	return 1;
}

int main(void)
{
	printf("hello\n");
	return helper();
}
`

func tree() fstest.MapFS {
	return fstest.MapFS{
		"src/hello.c":  {Data: []byte(hello)},
		"src/other.c":  {Data: []byte("int other;\n")},
		"include/x.h":  {Data: []byte("#define X 1\n")},
		"src/noeol.c":  {Data: []byte("int a;\nint b;")},
		"docs/README":  {Data: []byte("read me\n")},
		"src/gone.c":   {Data: []byte("int gone;\n")},
		"src/rename.c": {Data: []byte("int renamed;\n")},
	}
}

func mustParse(t *testing.T, text string) *Patch {
	t.Helper()
	p, err := Parse(strings.NewReader(text), "test.patch")
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return p
}

func changeOf(t *testing.T, r *Result, path string) Change {
	t.Helper()
	for _, c := range r.Changes {
		if c.Path == path {
			return c
		}
	}
	t.Fatalf("no change of %s in %+v", path, r.Changes)
	return Change{}
}

func TestApply(t *testing.T) {
	tests := []struct {
		name  string
		patch string
		path  string
		want  string // "" for a removed file
		note  string // a substring of one note, if any
	}{{
		name:  "git diff",
		patch: "diff --git a/src/hello.c b/src/hello.c\nindex 1..2 100644\n--- a/src/hello.c\n+++ b/src/hello.c\n@@ -8,5 +8,5 @@ static int helper(void)\n int main(void)\n {\n-\tprintf(\"hello\\n\");\n+\tprintf(\"hello, graft\\n\");\n \treturn helper();\n }\n",
		path:  "src/hello.c",
		want:  strings.Replace(hello, `"hello\n"`, `"hello, graft\n"`, 1),
	}, {
		name:  "diff -u with an offset",
		patch: "--- a/src/hello.c\t2026-01-01\n+++ b/src/hello.c\t2026-01-02\n@@ -40,3 +40,3 @@\n {\n-\treturn 1;\n+\treturn 2;\n }\n",
		path:  "src/hello.c",
		want:  strings.Replace(hello, "return 1;", "return 2;", 1),
		note:  "offset -36",
	}, {
		name:  "other prefix",
		patch: "--- linux-6.1.orig/src/other.c\n+++ linux-6.1/src/other.c\n@@ -1 +1 @@\n-int other;\n+int other = 1;\n",
		path:  "src/other.c",
		want:  "int other = 1;\n",
		note:  "-p1",
	}, {
		name:  "no prefix",
		patch: "--- src/other.c\n+++ src/other.c\n@@ -1 +1 @@\n-int other;\n+long other;\n",
		path:  "src/other.c",
		want:  "long other;\n",
	}, {
		name:  "new file",
		patch: "diff --git a/src/new.c b/src/new.c\nnew file mode 100644\n--- /dev/null\n+++ b/src/new.c\n@@ -0,0 +1,2 @@\n+int fresh;\n+int more;\n",
		path:  "src/new.c",
		want:  "int fresh;\nint more;\n",
	}, {
		name:  "removed file",
		patch: "diff --git a/src/gone.c b/src/gone.c\ndeleted file mode 100644\n--- a/src/gone.c\n+++ /dev/null\n@@ -1 +0,0 @@\n-int gone;\n",
		path:  "src/gone.c",
	}, {
		name:  "no newline at end of file",
		patch: "--- a/src/noeol.c\n+++ b/src/noeol.c\n@@ -1,2 +1,2 @@\n int a;\n-int b;\n\\ No newline at end of file\n+int c;\n\\ No newline at end of file\n",
		path:  "src/noeol.c",
		want:  "int a;\nint c;",
	}, {
		name:  "insertion at the top",
		patch: "--- a/include/x.h\n+++ b/include/x.h\n@@ -0,0 +1 @@\n+#pragma once\n",
		path:  "include/x.h",
		want:  "#pragma once\n#define X 1\n",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ApplyFS(tree(), mustParse(t, tc.patch))
			if err != nil {
				t.Fatal(err)
			}
			c := changeOf(t, r, tc.path)
			if tc.want == "" {
				if c.New != nil {
					t.Errorf("%s should be removed, has %q", tc.path, c.New)
				}
			} else if string(c.New) != tc.want {
				t.Errorf("%s =\n%s\nwant\n%s", tc.path, c.New, tc.want)
			}
			if tc.note != "" && !strings.Contains(strings.Join(r.Notes, "\n"), tc.note) {
				t.Errorf("notes %q lack %q", r.Notes, tc.note)
			}
			if tc.note == "" && len(r.Notes) > 0 {
				t.Errorf("unexpected notes %q", r.Notes)
			}
		})
	}
}

// TestApplyInOrder applies two patches to one file, the second on the
// result of the first, and a pair that cancels out.
func TestApplyInOrder(t *testing.T) {
	first := mustParse(t, "--- a/src/other.c\n+++ b/src/other.c\n@@ -1 +1 @@\n-int other;\n+int other = 1;\n")
	second := mustParse(t, "--- a/src/other.c\n+++ b/src/other.c\n@@ -1 +1 @@\n-int other = 1;\n+int other = 2;\n")
	r, err := ApplyFS(tree(), first, second)
	if err != nil {
		t.Fatal(err)
	}
	if c := changeOf(t, r, "src/other.c"); string(c.Old) != "int other;\n" || string(c.New) != "int other = 2;\n" {
		t.Errorf("change = %q -> %q", c.Old, c.New)
	}
	back := mustParse(t, "--- a/src/other.c\n+++ b/src/other.c\n@@ -1 +1 @@\n-int other = 1;\n+int other;\n")
	r, err = ApplyFS(tree(), first, back)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Changes) != 0 {
		t.Errorf("a patch and its reverse change %+v", r.Changes)
	}
}

func TestApplyErrors(t *testing.T) {
	tests := []struct {
		name, patch string
		want        error
		msg         string
	}{
		{"context does not match", "--- a/src/hello.c\n+++ b/src/hello.c\n@@ -3,2 +3,2 @@\n static int helper(void)\n-{ nothing\n+{\n", ErrDoesNotApply, "hunk #1"},
		{"missing file", "--- a/src/missing.c\n+++ b/src/missing.c\n@@ -1 +1 @@\n-a\n+b\n", ErrDoesNotApply, "src/missing.c is not in the tree"},
		{"new file exists", "--- /dev/null\n+++ b/src/other.c\n@@ -0,0 +1 @@\n+x\n", ErrDoesNotApply, "exists"},
		{"leaves the tree", "--- ../etc/passwd\n+++ ../etc/passwd\n@@ -1 +1 @@\n-a\n+b\n", ErrDoesNotApply, "leaves the tree"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ApplyFS(tree(), mustParse(t, tc.patch))
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %v, want %v with %q", err, tc.want, tc.msg)
			}
		})
	}
	if _, err := Parse(strings.NewReader("just some text\n"), "notes.txt"); !errors.Is(err, ErrNotAPatch) {
		t.Errorf("plain text: %v, want ErrNotAPatch", err)
	}
	bin := "diff --git a/x.bin b/x.bin\nindex bdc955b..8835708 100644\nGIT binary patch\nliteral 2\nJcmZQz0ssI600RI3\n\nliteral 2\nJcmZQz1ONa700IC2\n\n"
	if _, err := Parse(strings.NewReader(bin), "bin.patch"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("binary patch: %v, want ErrUnsupported", err)
	}
}

// TestHunkError names the file and hunk.
func TestHunkError(t *testing.T) {
	p := mustParse(t, "--- a/src/hello.c\n+++ b/src/hello.c\n@@ -1,1 +1,1 @@\n-#include <stdio.h>\n+#include <stdlib.h>\n@@ -10,1 +10,1 @@\n-\tprintf(\"bye\\n\");\n+\tputs(\"bye\");\n")
	_, err := ApplyFS(tree(), p)
	var he *HunkError
	if !errors.As(err, &he) || he.File != "src/hello.c" || he.Hunk != 2 || he.Patch != "test.patch" {
		t.Fatalf("err = %#v", err)
	}
}

func FuzzApply(f *testing.F) {
	f.Add("--- a/src/other.c\n+++ b/src/other.c\n@@ -1 +1 @@\n-int other;\n+int other = 1;\n")
	f.Add("--- a/src/hello.c\n+++ b/src/hello.c\n@@ -40,3 +40,3 @@\n {\n-\treturn 1;\n+\treturn 2;\n }\n")
	f.Fuzz(func(t *testing.T, text string) {
		p, err := Parse(strings.NewReader(text), "fuzz")
		if err != nil {
			return
		}
		ApplyFS(tree(), p)
	})
}
