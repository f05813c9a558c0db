package vmtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/graft-live/graft/vm"
)

func TestRunPattern(t *testing.T) {
	tests := map[string]string{
		"TestA":           "^TestA$",
		"TestA/sub_case":  "^TestA$/^sub_case$",
		"TestA/x.ko#01":   `^TestA$/^x\.ko#01$`,
		"TestA/b/c(with)": `^TestA$/^b$/^c\(with\)$`,
	}
	for in, want := range tests {
		if got := runPattern(in); got != want {
			t.Errorf("runPattern(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestRun runs its body in the guest through the test helper.
func TestRun(t *testing.T) {
	Run(t, func(t *testing.T) {
		if !InGuest() {
			t.Fatal("body ran on the host")
		}
		b, err := os.ReadFile("/proc/sys/kernel/osrelease")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(b)); !strings.HasSuffix(got, "-amd64") {
			t.Errorf("guest kernel %q is not a Debian amd64 kernel", got)
		}
		if _, err := os.Stat("/fixtures/hello"); err != nil {
			t.Errorf("fixture missing in the guest: %v", err)
		}
		t.Run("subtest", func(t *testing.T) {
			if os.Getpid() == 1 {
				t.Error("the test runs as init")
			}
		})
	}, WithFiles(func(t *testing.T) []vm.File {
		p := filepath.Join(t.TempDir(), "hello")
		os.WriteFile(p, []byte("hi"), 0o644)
		return []vm.File{{Host: p, Guest: "/fixtures/hello"}}
	}))
}

// TestGraftBinary checks that the binary is named by its content, so that a
// test process boots exactly the graft it built.
func TestGraftBinary(t *testing.T) {
	if InGuest() {
		t.Skip("host-side test")
	}
	bin, err := GraftBinary()
	if err != nil {
		t.Fatal(err)
	}
	sum, err := fileHash(bin)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(bin) != binaryPrefix+sum {
		t.Errorf("binary %s is not named by its content (hash %s)", bin, sum)
	}
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o100 == 0 {
		t.Errorf("binary %s is not executable: %v", bin, st.Mode())
	}
	if again, _ := GraftBinary(); again != bin {
		t.Errorf("second call gave %s, want %s", again, bin)
	}
}

func TestPruneBinaries(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	old := now.Add(-binaryMaxAge - time.Hour)
	files := map[string]time.Time{
		binaryPrefix + "old":   old,
		binaryPrefix + "fresh": now.Add(-time.Hour),
		buildPrefix + "123":    old,
		legacyBinary:           old,
		binaryLock:             old,
		"vmlinux-0123abcd":     old,
	}
	for name, mtime := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	pruneBinaries(dir, now.Add(-binaryMaxAge))
	want := map[string]bool{binaryPrefix + "fresh": true, binaryLock: true, "vmlinux-0123abcd": true}
	for name := range files {
		_, err := os.Stat(filepath.Join(dir, name))
		if kept := err == nil; kept != want[name] {
			t.Errorf("%s: kept %v, want %v", name, kept, want[name])
		}
	}
}
