package vmtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
