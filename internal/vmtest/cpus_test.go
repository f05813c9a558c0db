package vmtest

import "testing"

func TestGuestCPUs(t *testing.T) {
	for release, want := range map[string]int{
		"6.1.0-57-amd64":       2,
		"6.12.118+deb13-amd64": 2,
		"7.2.13+deb14-amd64":   1,
		"10.1.2+deb16-amd64":   1,
	} {
		if got := guestCPUs(release); got != want {
			t.Errorf("guestCPUs(%s) = %d, want %d", release, got, want)
		}
	}
}
