package kbuild

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// LinkModule links the kernel module name (a file name: "livepatch-fix")
// in dir against a headers tree, with the toolchain tc: kbuild compiles the C files sources and
// links them with the prebuilt objects, as they are, into dir/name.ko,
// whose path it returns. Symbols the kernel does not export are left to
// modpost's warnings: a livepatch module resolves them at load time.
func LinkModule(ctx context.Context, tc *Toolchain, headersDir, dir, name string, sources, objects []string, log io.Writer) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	var parts []string
	for _, s := range sources {
		if filepath.Dir(s) != "." || !strings.HasSuffix(s, ".c") {
			return "", fmt.Errorf("kbuild: link %s: source %q must be a .c file in %s", name, s, dir)
		}
		parts = append(parts, strings.TrimSuffix(s, ".c")+".o")
	}
	for _, o := range objects {
		if filepath.Dir(o) != "." || !strings.HasSuffix(o, ".o") {
			return "", fmt.Errorf("kbuild: link %s: object %q must be a .o file in %s", name, o, dir)
		}
		// kbuild reads a .cmd file for every object of a module (modpost
		// takes source versions from them); a prebuilt object has none.
		cmd := fmt.Sprintf("cmd_%s := prebuilt by graft\n", filepath.Join(dir, o))
		if err := os.WriteFile(filepath.Join(dir, "."+o+".cmd"), []byte(cmd), 0o644); err != nil {
			return "", err
		}
		parts = append(parts, o)
	}
	kb := fmt.Sprintf("obj-m := %s.o\n%s-y := %s\n", name, name, strings.Join(parts, " "))
	if err := os.WriteFile(filepath.Join(dir, "Kbuild"), []byte(kb), 0o644); err != nil {
		return "", err
	}
	err = kbuildMake(ctx, tc, "", log, "-C", headersDir, "M="+dir, "-j"+strconv.Itoa(runtime.NumCPU()), "KBUILD_MODPOST_WARN=1", "modules")
	if err != nil {
		return "", fmt.Errorf("kbuild: link %s: %w", name, err)
	}
	ko := filepath.Join(dir, name+".ko")
	if _, err := os.Stat(ko); err != nil {
		return "", fmt.Errorf("kbuild: link %s: make built no %s", name, ko)
	}
	return ko, nil
}

// CompileExternal compiles the C file src (in dir) against a headers tree
// as an object of an out-of-tree module, and returns the object's path:
// the target's exact flags, for probes of its headers.
func CompileExternal(ctx context.Context, tc *Toolchain, headersDir, dir, src string, log io.Writer) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	obj := strings.TrimSuffix(src, ".c") + ".o"
	if err := os.WriteFile(filepath.Join(dir, "Kbuild"), []byte("obj-m := "+obj+"\n"), 0o644); err != nil {
		return "", err
	}
	if err := kbuildMake(ctx, tc, "", log, "-C", headersDir, "M="+dir, obj); err != nil {
		return "", fmt.Errorf("kbuild: compile %s: %w", src, err)
	}
	return filepath.Join(dir, obj), nil
}
