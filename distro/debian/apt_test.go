package debian

import (
	"reflect"
	"sort"
	"testing"
)

func TestParseMadison(t *testing.T) {
	out := []byte(` linux-image-amd64 |  6.1.192-2 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
linux-image-amd64 |  6.1.176-1 | http://deb.debian.org/debian bookworm/main amd64 Packages
linux-image-amd64 |  6.1.176-1 | http://mirror.example bookworm/main amd64 Packages
linux-image-6.1.0-56-amd64 |  6.1.192-2 | http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
`)
	if got, want := parseMadison(out, "linux-image-amd64"), []string{"6.1.192-2", "6.1.176-1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("parseMadison = %q, want %q", got, want)
	}
	if got := parseMadison(out, "linux-image-6.1.0-57-amd64"); got != nil {
		t.Errorf("parseMadison of an absent package = %q", got)
	}
}

func TestParseControlAndDepends(t *testing.T) {
	out := []byte(`Package: linux-headers-6.1.0-56-amd64
Version: 6.1.192-2
Depends: linux-headers-6.1.0-56-common (= 6.1.192-2), linux-kbuild-6.1 (>= 6.1.192-2), linux-compiler-gcc-12-x86 | gcc-12:amd64
Description: Header files for Linux
 continued line

Package: second-stanza
`)
	f := parseControl(out)
	if f["Package"] != "linux-headers-6.1.0-56-amd64" || f["Version"] != "6.1.192-2" {
		t.Fatalf("fields = %v", f)
	}
	if f["Description"] != "Header files for Linux\ncontinued line" {
		t.Errorf("Description = %q", f["Description"])
	}
	got := parseDepends(f["Depends"])
	want := []dependency{
		{"linux-headers-6.1.0-56-common", "=", "6.1.192-2"},
		{"linux-kbuild-6.1", ">=", "6.1.192-2"},
		{"linux-compiler-gcc-12-x86", "", ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseDepends = %+v, want %+v", got, want)
	}
}

func TestNaturalOrder(t *testing.T) {
	got := []string{"6.1.0-9-amd64", "6.12.117+deb12-amd64", "6.1.0-56-amd64", "6.1.0-10-amd64", "5.10.0-30-amd64"}
	sort.Slice(got, func(i, j int) bool { return naturalLess(got[i], got[j]) })
	want := []string{"5.10.0-30-amd64", "6.1.0-9-amd64", "6.1.0-10-amd64", "6.1.0-56-amd64", "6.12.117+deb12-amd64"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("sorted = %q, want %q", got, want)
	}
}

func TestSourceSeries(t *testing.T) {
	tests := map[string]string{
		"6.1.0-56-amd64":        "6.1",
		"6.12.117+deb12-amd64":  "6.12",
		"5.10.0-30-cloud-amd64": "5.10",
	}
	for in, want := range tests {
		if got, err := SourceSeries(in); err != nil || got != want {
			t.Errorf("SourceSeries(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := SourceSeries("garbage"); err == nil {
		t.Error("SourceSeries(garbage) gave no error")
	}
}

func TestDefaultCacheDir(t *testing.T) {
	t.Setenv("GRAFT_CACHE", "/x/graft-cache")
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	if d, _ := DefaultCacheDir(); d != "/x/graft-cache" {
		t.Errorf("with GRAFT_CACHE: %q", d)
	}
	t.Setenv("GRAFT_CACHE", "")
	if d, _ := DefaultCacheDir(); d != "/xdg/graft" {
		t.Errorf("with XDG_CACHE_HOME: %q", d)
	}
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "/home/u")
	if d, _ := DefaultCacheDir(); d != "/home/u/.cache/graft" {
		t.Errorf("with HOME only: %q", d)
	}
}

func TestPartString(t *testing.T) {
	if got := (Image | Source).String(); got != "image,source" {
		t.Errorf("String = %q", got)
	}
	if got := Part(0).String(); got != "none" {
		t.Errorf("String = %q", got)
	}
}
