package kmod

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/graft-live/graft/internal/testmod"
)

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	p := testmod.Make(t, dir, testmod.Module{Name: "livepatch_x", Release: "6.1.0-56-amd64", Patch: true,
		Depends: []string{"a", "b_c"}, Extra: []string{"alias=one", "alias=two"}})
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Name != "livepatch_x" || f.Release() != "6.1.0-56-amd64" || !f.Livepatch || !slices.Equal(f.Depends, []string{"a", "b_c"}) || f.Signed {
		t.Errorf("module = %+v", f.Module)
	}
	if a := f.Info["alias"]; a != "one,two" && a != "two,one" {
		t.Errorf("alias = %q", f.Info["alias"])
	}
	data, _ := os.ReadFile(p)
	if !bytes.Equal(f.Data, data) || len(f.SHA256) != 64 || f.Content != len(data) {
		t.Errorf("data, sha256 %s, content %d", f.SHA256, f.Content)
	}
	plain := testmod.Make(t, dir, testmod.Module{Name: "plain", Release: "6.1.0-56-amd64"})
	g, err := Open(plain)
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	if g.Livepatch || len(g.Depends) != 0 {
		t.Errorf("plain module = %+v", g.Module)
	}
}

func TestSigned(t *testing.T) {
	p := testmod.Make(t, t.TempDir(), testmod.Module{Name: "m", Release: "6.1.0-56-amd64"})
	data, _ := os.ReadFile(p)
	sig := bytes.Repeat([]byte{0x30}, 100)
	var trailer [12]byte
	trailer[2] = 2
	binary.BigEndian.PutUint32(trailer[8:], uint32(len(sig)))
	signed := append(append(append(append([]byte(nil), data...), sig...), trailer[:]...), SignatureMagic...)
	m, err := Parse(signed)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Signed || m.Content != len(data) || m.SignatureSize != len(signed)-len(data) {
		t.Errorf("signed module: signed %v content %d signature %d", m.Signed, m.Content, m.SignatureSize)
	}
	// A signature longer than the file.
	binary.BigEndian.PutUint32(signed[len(signed)-len(SignatureMagic)-4:], 1<<30)
	if _, err := Parse(signed); !errors.Is(err, ErrCorrupt) {
		t.Errorf("lying signature length: %v", err)
	}
}

func TestCorrupt(t *testing.T) {
	p := testmod.Make(t, t.TempDir(), testmod.Module{Name: "m", Release: "6.1.0-56-amd64"})
	data, _ := os.ReadFile(p)
	for name, b := range map[string][]byte{
		"empty":     nil,
		"not ELF":   []byte("#!/bin/sh\necho hello\n"),
		"truncated": data[:len(data)/2],
	} {
		if _, err := Parse(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing.ko")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("\x7fELF\x02\x01\x01"))
	f.Add([]byte(SignatureMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		Parse(data)
	})
}

// TestDataStrings reads the names a livepatch module's tables point at,
// and not the strings that only its code uses.
func TestDataStrings(t *testing.T) {
	src := `
struct func { const char *old_name; void *new_func; };
struct object { const char *name; struct func *funcs; };
static int new_show(void) { return 0; }
static struct func funcs[] = { { "cmdline_proc_show", new_show }, { "meminfo_proc_show", new_show }, { 0 } };
static struct object objs[] = { { "ext4", funcs }, { 0 } };
void *graft_objs = objs;
const char *graft_code_string(void) { return "only_in_code"; }
`
	p := testmod.Make(t, t.TempDir(), testmod.Module{Name: "livepatch_x", Release: "6.1.0-56-amd64", Patch: true, Source: src})
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DataStrings(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cmdline_proc_show", "meminfo_proc_show", "ext4"} {
		if !slices.Contains(got, want) {
			t.Errorf("DataStrings = %q: no %q", got, want)
		}
	}
	if slices.Contains(got, "only_in_code") {
		t.Errorf("DataStrings = %q: has a string only code uses", got)
	}
	if _, err := DataStrings(data[:len(data)/3]); !errors.Is(err, ErrCorrupt) {
		t.Errorf("truncated: %v, want ErrCorrupt", err)
	}
}
