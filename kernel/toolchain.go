package kernel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/graft-live/graft/distro/debian"
	"github.com/graft-live/graft/kbuild"
)

// Toolchain returns where kbuild runs for the target: the host when its
// compiler is the one that built the kernel, else a root file system of
// the kernel's Debian release with that compiler (made once, about a
// minute, and kept in the cache). A target whose compiler neither has is
// refused with kbuild.ErrCompilerMismatch, naming both compilers.
func (c *Cache) Toolchain(ctx context.Context, t *Target, log io.Writer) (*kbuild.Toolchain, error) {
	if t.HeadersDir == "" {
		return nil, fmt.Errorf("kernel %s: no headers (fetch them first)", t.Release)
	}
	host := kbuild.Host.WithCompiler(t.HeadersDir)
	hostErr := kbuild.CheckCompiler(ctx, host, t.HeadersDir)
	if hostErr == nil {
		// A tree fetched before graft recorded them has no list: it passes.
		deps, _ := os.ReadFile(filepath.Join(t.HeadersDir, debian.HostDependsFile))
		if err := kbuild.CheckPackages(ctx, host, strings.Fields(string(deps))); err != nil {
			return nil, err
		}
		return host, nil
	}
	suite := rootSuite(t)
	if !errors.Is(hostErr, kbuild.ErrCompilerMismatch) && !errors.Is(hostErr, kbuild.ErrNoCompiler) || suite == "" || suite == hostSuite() {
		return nil, hostErr
	}
	deps, err := os.ReadFile(filepath.Join(t.HeadersDir, debian.HostDependsFile))
	if err != nil {
		return nil, fmt.Errorf("%w; and the headers name no packages for a root file system of %s: %v", hostErr, suite, err)
	}
	root := filepath.Join(c.dir, "toolchains", suite)
	tc, err := kbuild.MakeRoot(ctx, root, suite, strings.Fields(string(deps)), []string{c.dir}, log)
	if err != nil {
		return nil, err
	}
	tc = tc.WithCompiler(t.HeadersDir)
	if err := kbuild.CheckCompiler(ctx, tc, t.HeadersDir); err != nil {
		return nil, fmt.Errorf("%w (the host: %v)", err, hostErr)
	}
	return tc, nil
}

// rootSuite is the Debian suite whose root file system holds the target's
// compiler: the release itself, without its updates, security or
// backports.
func rootSuite(t *Target) string {
	s := t.Suite
	if s == "" {
		s = debian.SuiteOf(t.Release)
	}
	for _, suffix := range []string{"-security", "-updates", "-backports", "-proposed-updates"} {
		s = strings.TrimSuffix(s, suffix)
	}
	return s
}

// hostSuite is the Debian release this machine runs (VERSION_CODENAME).
func hostSuite() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VERSION_CODENAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}
