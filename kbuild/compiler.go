package kbuild

import (
	"fmt"
	"path"
	"regexp"
	"strings"
)

// Compiler is a C compiler as its version line names it.
type Compiler struct {
	// Family is "gcc" or "clang".
	Family string
	// Version is the version line without the program name:
	// "(Debian 12.2.0-14+deb12u1) 12.2.0".
	Version string
	// Line is the whole version line.
	Line string
}

func (c Compiler) String() string { return c.Line }

// Same reports whether two compilers are the same compiler, whatever the
// program was called: gcc-12, x86_64-linux-gnu-gcc-12 and gcc are one
// compiler when they print the same version.
func (c Compiler) Same(o Compiler) bool { return c.Family == o.Family && c.Version == o.Version }

// gccProgram matches the names gcc goes by: gcc, gcc-12,
// x86_64-linux-gnu-gcc-14.
var gccProgram = regexp.MustCompile(`^(?:[a-z0-9_]+-[a-z0-9_]+-[a-z0-9_]+-)?gcc(?:-[0-9.]+)?$`)

// ParseCompiler reads the first line of `CC --version`, or the kernel's
// CONFIG_CC_VERSION_TEXT, which is the same line.
func ParseCompiler(line string) (Compiler, error) {
	line = strings.TrimSpace(line)
	c := Compiler{Line: line}
	if i := strings.Index(line, "clang version "); i >= 0 {
		c.Family, c.Version = "clang", line[i+len("clang "):]
		return c, nil
	}
	prog, rest, _ := strings.Cut(line, " ")
	if !gccProgram.MatchString(path.Base(prog)) || rest == "" {
		return c, fmt.Errorf("kbuild: %q is not a gcc or clang version line", line)
	}
	c.Family, c.Version = "gcc", strings.TrimSpace(rest)
	return c, nil
}
