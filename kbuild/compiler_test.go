package kbuild

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCompilerSame(t *testing.T) {
	tests := []struct {
		a, b string
		same bool
	}{
		{"gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0", "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0", true},
		{"x86_64-linux-gnu-gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0", "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0", true},
		{"x86_64-linux-gnu-gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0", "gcc (Debian 12.2.0-14+deb12u1) 12.2.0", true},
		{"x86_64-linux-gnu-gcc-14 (Debian 14.2.0-19) 14.2.0", "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0", false},
		{"gcc-12 (Debian 12.2.0-14) 12.2.0", "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0", false},
		{"Debian clang version 14.0.6", "clang version 14.0.6", true},
		{"Debian clang version 14.0.6", "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0", false},
	}
	for _, tc := range tests {
		a, err := ParseCompiler(tc.a)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ParseCompiler(tc.b)
		if err != nil {
			t.Fatal(err)
		}
		if a.Same(b) != tc.same {
			t.Errorf("%q and %q: same = %v", tc.a, tc.b, !tc.same)
		}
	}
	for _, bad := range []string{"", "make 4.3", "GNU ld (GNU Binutils for Debian) 2.40"} {
		if _, err := ParseCompiler(bad); err == nil {
			t.Errorf("ParseCompiler(%q) accepted", bad)
		}
	}
}

// TestCompilerFor reads the compiler from the .kernelvariables of Debian's
// headers as each release writes it.
func TestCompilerFor(t *testing.T) {
	tests := []struct{ name, vars, want string }{
		{"bookworm", "override ARCH = x86\nCC = $(if $(DEBIAN_KERNEL_USE_CCACHE),$(CCACHE)) $(CROSS_COMPILE)gcc-12\n" +
			"ifneq ($(DEB_BUILD_ARCH),$(DEB_HOST_ARCH))\noverride CROSS_COMPILE = $(DEB_HOST_GNU_TYPE)-\nendif\n", "gcc-12"},
		{"sid", "CC = $(if $(DEBIAN_KERNEL_USE_CCACHE),$(CCACHE)) $(CROSS_COMPILE)gcc-16\n" +
			"DEB_BUILD_ARCH ?= $(shell dpkg --print-architecture)\noverride CROSS_COMPILE = x86_64-linux-gnu-\n", "x86_64-linux-gnu-gcc-16"},
		{"none", "", "gcc"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.vars != "" {
				if err := os.WriteFile(filepath.Join(dir, ".kernelvariables"), []byte(tc.vars), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if got := compilerFor(dir); got != tc.want {
				t.Errorf("compilerFor = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestParseCmd reads the compile command and module of an object from
// kbuild's .cmd file, before and after Linux 6.2 renamed its variable.
func TestParseCmd(t *testing.T) {
	const flags = "gcc -nostdinc -D__KERNEL__ -DMODULE -DKBUILD_BASENAME='\"binfmt_misc\"' -DKBUILD_MODNAME='\"binfmt_misc\"' -c -o fs/binfmt_misc.o fs/binfmt_misc.c"
	for _, prefix := range []string{"cmd_", "savedcmd_"} {
		cmd, mod := parseCmd(prefix+"fs/binfmt_misc.o := "+flags+"\n\nsource_fs/binfmt_misc.o := fs/binfmt_misc.c\n", "fs/binfmt_misc.o")
		if cmd != flags || mod != "binfmt_misc" {
			t.Errorf("%s: command %q, module %q", prefix, cmd, mod)
		}
	}
	if _, mod := parseCmd("savedcmd_fs/proc/cmdline.o := gcc -D__KERNEL__ -DKBUILD_MODNAME='\"cmdline\"' -c fs/proc/cmdline.c\n", "fs/proc/cmdline.o"); mod != "" {
		t.Errorf("built-in object: module %q", mod)
	}
}
