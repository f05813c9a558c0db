package kbuild

import "testing"

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
