package main

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/graft-live/graft/distro/debian"
	"github.com/graft-live/graft/vm"
)

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, exitOK},
		{"plain", errors.New("boom"), exitFailure},
		{"usage", usageError{errors.New("bad flag")}, exitUsage},
		{"cobra args", errors.New("accepts 1 arg(s), received 2"), exitUsage},
		{"guest status", silentError{42}, 42},
		{"wrapped unknown release", fmt.Errorf("resolve: %w", debian.ErrUnknownRelease), exitNotFound},
		{"no qemu", vm.ErrNoQEMU, exitEnvironment},
		{"timeout", &vm.TimeoutError{}, exitTimeout},
		{"vm failed", &vm.GuestError{Reason: "panic"}, exitVMFailed},
		{"interrupted", fmt.Errorf("fetch: %w", context.Canceled), exitInterrupted},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := exitCode(tc.err); got != tc.want {
				t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}

func TestParseMiB(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"512M", 512, true}, {"2G", 2048, true}, {"1g", 1024, true}, {"768", 768, true},
		{"", 0, false}, {"lots", 0, false}, {"-1G", 0, false}, {"1.5G", 0, false},
	}
	for _, tc := range tests {
		got, err := parseMiB(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseMiB(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
