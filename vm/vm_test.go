package vm

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"

	"github.com/graft-live/graft/vm/guest"
)

func TestParseFile(t *testing.T) {
	tests := []struct {
		in      string
		want    File
		wantErr bool
	}{
		{in: "/a/x.ko", want: File{Host: "/a/x.ko", Guest: "/a/x.ko"}},
		{in: "x.ko", want: File{Host: "x.ko", Guest: "/x.ko"}},
		{in: "./b/x.ko:/x.ko", want: File{Host: "./b/x.ko", Guest: "/x.ko"}},
		{in: "x.ko:/a/../y.ko", want: File{Host: "x.ko", Guest: "/y.ko"}},
		{in: "x.ko:rel", wantErr: true},
		{in: ":/x", wantErr: true},
		{in: "x:", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseFile(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseFile(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Fatalf("ParseFile(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
}

func TestTail(t *testing.T) {
	var tl tail
	for i := 0; i < 5000; i++ {
		tl.Write([]byte("line\r\n"))
	}
	tl.Write([]byte("\nlast one"))
	got := tl.lines(3)
	want := []string{"line", "line", "last one"}
	if len(got) != 3 || got[0] != want[0] || got[2] != want[2] {
		t.Fatalf("lines(3) = %q, want %q", got, want)
	}
	// A crash report is kept from its first line.
	tl.Write([]byte("\n[ 4.79] BUG: kernel NULL pointer dereference\n"))
	for i := 0; i < 40; i++ {
		tl.Write([]byte("[ 4.79]  trace line\n"))
	}
	tl.Write([]byte("[ 4.80] Kernel panic - not syncing: Fatal exception\n"))
	got = tl.lines(3)
	if len(got) != 42 || !strings.Contains(got[0], "BUG: kernel NULL") || !strings.Contains(got[41], "Kernel panic") {
		t.Errorf("lines(3) after a crash = %d lines from %q to %q", len(got), got[0], got[len(got)-1])
	}
}

func TestInitramfsContents(t *testing.T) {
	dir := t.TempDir()
	init := filepath.Join(dir, "graft")
	data := filepath.Join(dir, "data.txt")
	os.WriteFile(init, []byte("#!fake init"), 0o755)
	os.WriteFile(data, []byte("payload"), 0o640)
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, "sub"), 0o755)
	os.WriteFile(filepath.Join(tree, "sub", "leaf"), []byte("leaf"), 0o644)
	ir := Initramfs{
		Init:  init,
		Files: []File{{Host: data, Guest: "/deep/dir/data.txt"}, {Host: tree, Guest: "/t"}},
	}
	out := filepath.Join(dir, "initramfs.cpio")
	if err := ir.write(out, guest.Config{Argv: []string{"cat", "/deep/dir/data.txt"}}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rr, err := cpio.Newc.NewFileReader(f)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := cpio.ReadAllRecords(rr)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]cpio.Record{}
	for _, r := range recs {
		byName[r.Name] = r
	}
	content := func(name string) string {
		r, ok := byName[name]
		if !ok {
			t.Fatalf("%s missing from the initramfs", name)
		}
		var b bytes.Buffer
		b.ReadFrom(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
		return b.String()
	}
	if got := content("deep/dir/data.txt"); got != "payload" {
		t.Errorf("data file = %q", got)
	}
	if got := byName["deep/dir/data.txt"].Mode & 0o777; got != 0o640 {
		t.Errorf("data file mode = %o, want 640", got)
	}
	if got := content("t/sub/leaf"); got != "leaf" {
		t.Errorf("file from a directory = %q", got)
	}
	if got := content("bin/graft"); got != "#!fake init" {
		t.Errorf("bin/graft = %q", got)
	}
	if got := content("init"); got != "bin/graft" {
		t.Errorf("init symlink points to %q", got)
	}
	if _, ok := byName["deep/dir"]; !ok {
		t.Errorf("parent directory deep/dir missing")
	}
	if _, ok := byName["dev/console"]; !ok {
		t.Errorf("dev/console missing: the kernel needs it before devtmpfs is mounted")
	}
	if got := content("graft/vm.json"); !bytes.Contains([]byte(got), []byte(`"cat"`)) {
		t.Errorf("config = %s", got)
	}
}

func TestInitramfsMissingFile(t *testing.T) {
	ir := Initramfs{Init: "/nonexistent/graft"}
	err := ir.write(filepath.Join(t.TempDir(), "x.cpio"), guest.Config{})
	if err == nil {
		t.Fatal("no error for a missing init")
	}
	if !errors.Is(err, ErrFileNotFound) {
		t.Fatalf("error %v does not match ErrFileNotFound", err)
	}
}

func TestLineWriter(t *testing.T) {
	var got []string
	w := &LineWriter{Line: func(l string) { got = append(got, l) }}
	w.Write([]byte("one\r\ntw"))
	w.Write([]byte("o\n\nthree"))
	w.Flush()
	if want := []string{"one", "two", "", "three"}; !slices.Equal(got, want) {
		t.Errorf("lines %q, want %q", got, want)
	}
}
