// Package testenv is what graft's tests share about their environment:
// skipping a test whose prerequisite is missing, except under CI=true,
// where everything must be there and a missing tool fails the test; and
// the compiler flags that make gcc generate code as the kernel does.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// KernelCFLAGS make gcc compile a small C file as kbuild compiles a kernel
// object for graft: optimized, an ftrace entry per function, one section
// per function and data object, kernel code model, debug information.
var KernelCFLAGS = []string{
	"-O2", "-pg", "-mfentry", "-mrecord-mcount", "-ffunction-sections", "-fdata-sections",
	"-mcmodel=kernel", "-fno-PIE", "-mno-red-zone", "-fno-asynchronous-unwind-tables", "-fno-common", "-g",
}

// CI reports whether the tests run in CI (CI=true).
func CI() bool { return os.Getenv("CI") == "true" }

// SkipOrFail skips the test with the reason, or fails it under CI=true:
// CI has everything, so a missing prerequisite there is a broken set-up.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	reason := fmt.Sprintf(format, args...)
	if CI() {
		t.Fatalf("CI=true, but %s", reason)
	}
	t.Skip(reason)
}

// NeedTool skips (or fails under CI=true) when a command is missing.
func NeedTool(t testing.TB, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		SkipOrFail(t, "%s is missing", name)
	}
}
