package kbuild

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// ErrCompilerMismatch means the compiler on this machine is not the one the
// target kernel was built with; modules built by another compiler may not
// load or may behave differently.
var ErrCompilerMismatch = errors.New("compiler differs from the one that built the kernel")

// ErrNoCompiler means the compiler that built the kernel is not installed.
var ErrNoCompiler = errors.New("the kernel's compiler is not installed")

// BuildModules runs `make -C headersDir M=srcDir modules` (srcDir holds a
// Kbuild or Makefile) with the toolchain tc, one job per CPU, and returns
// the built .ko files.
// make's output goes to log (nil = discarded); on failure the error carries
// its last lines.
func BuildModules(ctx context.Context, tc *Toolchain, headersDir, srcDir string, log io.Writer) ([]string, error) {
	srcDir, err := filepath.Abs(srcDir)
	if err != nil {
		return nil, err
	}
	if err := CheckCompiler(ctx, tc, headersDir); err != nil {
		return nil, err
	}
	if err := kbuildMake(ctx, tc, "", log, "-C", headersDir, "M="+srcDir, "-j"+strconv.Itoa(runtime.NumCPU()), "modules"); err != nil {
		return nil, fmt.Errorf("kbuild: modules in %s: %w", srcDir, err)
	}
	kos, err := filepath.Glob(filepath.Join(srcDir, "*.ko"))
	if err != nil {
		return nil, err
	}
	if len(kos) == 0 {
		return nil, fmt.Errorf("kbuild: make modules in %s built no .ko (is obj-m set in its Kbuild?)", srcDir)
	}
	return kos, nil
}

// CheckCompiler compares the compiler that make would use for this headers
// tree, in the toolchain tc, with CONFIG_CC_VERSION_TEXT of the kernel's
// config.
func CheckCompiler(ctx context.Context, tc *Toolchain, headersDir string) error {
	want, err := configString(filepath.Join(headersDir, ".config"), "CONFIG_CC_VERSION_TEXT")
	if err != nil {
		return fmt.Errorf("kbuild: %s is not a prepared headers tree: %w", headersDir, err)
	}
	cc := compilerFor(headersDir)
	out, err := tc.Command(ctx, "", cc, "--version").Output()
	if err != nil {
		return fmt.Errorf("%w: the kernel was built with %q but %s is not available in %s (install it, e.g. apt-get install %s): %v", ErrNoCompiler, want, cc, tc, cc, err)
	}
	line, _, _ := strings.Cut(string(out), "\n")
	kernel, err := ParseCompiler(want)
	if err != nil {
		return err
	}
	host, err := ParseCompiler(line)
	if err != nil {
		return err
	}
	if !kernel.Same(host) {
		return fmt.Errorf("%w: the kernel was built with %q, %s is %q", ErrCompilerMismatch, kernel, cc, host)
	}
	return nil
}

// compilerFor reads the CC that Debian's headers pin in .kernelvariables,
// with the CROSS_COMPILE prefix they set for every build (not the one set
// only for cross builds): gcc-12 for Debian 12, x86_64-linux-gnu-gcc-16
// for sid, whose root file systems have only the prefixed program.
// Without .kernelvariables it is gcc.
func compilerFor(headersDir string) string {
	f, err := os.Open(filepath.Join(headersDir, ".kernelvariables"))
	if err != nil {
		return "gcc"
	}
	defer f.Close()
	cc, cross, depth := "gcc", "", 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		word, _, _ := strings.Cut(line, " ")
		switch {
		case word == "ifeq" || word == "ifneq" || word == "ifdef" || word == "ifndef":
			depth++
		case word == "endif":
			depth--
		case depth > 0:
		case strings.HasPrefix(line, "CC ="):
			// "$(if $(DEBIAN_KERNEL_USE_CCACHE),$(CCACHE)) $(CROSS_COMPILE)gcc-12"
			if fields := strings.Fields(strings.TrimPrefix(line, "CC =")); len(fields) > 0 {
				cc = fields[len(fields)-1]
			}
		case strings.HasPrefix(line, "override CROSS_COMPILE ="):
			cross = strings.TrimSpace(strings.TrimPrefix(line, "override CROSS_COMPILE ="))
		}
	}
	return strings.ReplaceAll(cc, "$(CROSS_COMPILE)", cross)
}

// configString reads a string option from a kernel .config.
func configString(config, key string) (string, error) {
	b, err := os.ReadFile(config)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			return strings.Trim(v, `"`), nil
		}
	}
	return "", fmt.Errorf("%s not set in %s", key, config)
}

// ErrMissingPackages means packages of the host that building against a
// headers tree needs are not installed; the error names them.
var ErrMissingPackages = errors.New("packages that kbuild needs are not installed")

// CheckPackages names the Debian packages of want that are not installed
// in the toolchain tc (the packages the kernel's headers depend on, which
// installing them would have pulled in). Outside a dpkg system nothing is
// checked.
func CheckPackages(ctx context.Context, tc *Toolchain, want []string) error {
	if len(want) == 0 {
		return nil
	}
	out, err := tc.Command(ctx, "", "dpkg-query", "-W", "-f", "${db:Status-Abbrev} ${Package} ${Provides}\n").Output()
	if err != nil {
		return nil // not a dpkg system: nothing to compare with
	}
	have := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(strings.ReplaceAll(line, ",", " "))
		if len(f) < 2 || !strings.HasPrefix(f[0], "ii") {
			continue
		}
		for _, name := range f[1:] {
			if !strings.HasPrefix(name, "(") && !strings.HasSuffix(name, ")") {
				have[strings.SplitN(name, ":", 2)[0]] = true
			}
		}
	}
	var missing []string
	for _, p := range want {
		if !have[p] {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s (apt-get install %s)", ErrMissingPackages, strings.Join(missing, ", "), strings.Join(missing, " "))
	}
	return nil
}
