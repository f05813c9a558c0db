package guest

import "testing"

func TestParseControl(t *testing.T) {
	tests := []struct {
		in     string
		code   int
		errMsg string
		ok     bool
	}{
		{in: "exit 0\n", code: 0, ok: true},
		{in: "exit 3\r\n", code: 3, ok: true},
		{in: "noise\nexit 130\n", code: 130, ok: true},
		{in: "error mount /proc: EPERM\n", errMsg: "mount /proc: EPERM", ok: true},
		{in: "", ok: false},
		{in: "exit x\n", ok: false},
	}
	for _, tc := range tests {
		code, msg, ok := ParseControl([]byte(tc.in))
		if code != tc.code || msg != tc.errMsg || ok != tc.ok {
			t.Errorf("ParseControl(%q) = %d, %q, %v; want %d, %q, %v", tc.in, code, msg, ok, tc.code, tc.errMsg, tc.ok)
		}
	}
	// What the guest writes, the host must read back.
	for _, code := range []int{0, 1, 255} {
		if got, _, ok := ParseControl([]byte(FormatExit(code))); !ok || got != code {
			t.Errorf("round trip of exit %d gave %d, %v", code, got, ok)
		}
	}
	if _, msg, ok := ParseControl([]byte(FormatError("a\nb"))); !ok || msg != "a b" {
		t.Errorf("round trip of an error gave %q, %v", msg, ok)
	}
}
