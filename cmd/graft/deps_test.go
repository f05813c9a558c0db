package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoTestingInBinary keeps the test harness out of the graft binary:
// the engine of graft vm is package vm; internal/vmtest, which imports
// testing, is for tests only.
func TestNoTestingInBinary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "testing" || strings.HasSuffix(pkg, "/internal/vmtest") || strings.HasSuffix(pkg, "/internal/fixtures") {
			t.Errorf("graft links %s", pkg)
		}
	}
}
