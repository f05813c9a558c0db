package debian

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/graft-live/graft/internal/flock"
)

// Archive is where apt finds Debian packages: the machine's own apt sources
// (SystemArchive), or graft's own apt state in its cache, which knows the
// suites of every kernel graft targets (Cache.GraftArchive) without
// touching the machine's sources.
type Archive struct {
	name string
	// options are the -o options of apt-get and apt-cache.
	options []string
}

// SystemArchive is the machine's own apt sources.
var SystemArchive = &Archive{name: "the apt sources"}

func (a *Archive) String() string { return a.name }

// Suites are what graft's own apt state offers: the kernels of Debian 12
// (with its backports), Debian 13 and unstable.
var Suites = []string{
	"bookworm", "bookworm-updates", "bookworm-security", "bookworm-backports",
	"trixie", "trixie-updates", "trixie-security",
	"sid",
}

// keyring verifies the archive's signatures.
const keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

// graftListsMaxAge is how old graft's package lists may be before a
// resolution updates them.
const graftListsMaxAge = 24 * time.Hour

// ErrNoKeyring means the Debian archive keyring is missing, without which
// graft cannot check the packages of suites the machine does not use.
var ErrNoKeyring = errors.New("the Debian archive keyring is missing (apt-get install debian-archive-keyring)")

// GraftArchive returns graft's own apt state (in the cache's apt
// directory), updating its package lists when they are missing or older
// than a day. Mirrors: $GRAFT_DEBIAN_MIRROR (http://deb.debian.org/debian)
// and $GRAFT_DEBIAN_SECURITY_MIRROR (http://deb.debian.org/debian-security).
func (c *Cache) GraftArchive(ctx context.Context) (*Archive, error) {
	return c.graftArchive(ctx, false)
}

func (c *Cache) graftArchive(ctx context.Context, refresh bool) (*Archive, error) {
	dir := filepath.Join(c.dir, "apt")
	a := &Archive{name: "graft's apt state (" + strings.Join(Suites, ", ") + ")", options: []string{
		"-o", "Dir::Etc::SourceList=" + filepath.Join(dir, "sources.list"),
		"-o", "Dir::Etc::SourceParts=/dev/null",
		"-o", "Dir::Etc::Preferences=/dev/null",
		"-o", "Dir::Etc::PreferencesParts=/dev/null",
		"-o", "Dir::State::Lists=" + filepath.Join(dir, "lists"),
		"-o", "Dir::State::status=" + filepath.Join(dir, "status"),
		"-o", "Dir::Cache=" + filepath.Join(dir, "cache"),
		"-o", "Acquire::Languages=none",
		"-o", "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false",
		"-o", "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false",
		"-o", "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false",
	}}
	stamp := filepath.Join(dir, "updated")
	if st, err := os.Stat(stamp); err == nil && !refresh && time.Since(st.ModTime()) < graftListsMaxAge {
		return a, nil
	}
	if _, err := os.Stat(keyring); err != nil {
		return nil, ErrNoKeyring
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	err := flock.Do(ctx, filepath.Join(dir, ".lock"), func() error {
		if st, err := os.Stat(stamp); err == nil && !refresh && time.Since(st.ModTime()) < graftListsMaxAge {
			return nil
		}
		for _, d := range []string{"lists/partial", "cache/archives/partial"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				return err
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "status"), nil, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "sources.list"), []byte(sourcesList()), 0o644); err != nil {
			return err
		}
		if err := a.aptGet(ctx, "", "update", "-q"); err != nil {
			return fmt.Errorf("update graft's apt state: %w", err)
		}
		return os.WriteFile(stamp, []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644)
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

func sourcesList() string {
	mirror := envOr("GRAFT_DEBIAN_MIRROR", "http://deb.debian.org/debian")
	security := envOr("GRAFT_DEBIAN_SECURITY_MIRROR", "http://deb.debian.org/debian-security")
	var b strings.Builder
	b.WriteString("# Written by graft: the suites of the kernels it targets. The machine's own sources are not touched.\n")
	for _, s := range Suites {
		m := mirror
		if strings.HasSuffix(s, "-security") {
			m = security
		}
		fmt.Fprintf(&b, "deb [signed-by=%s] %s %s main\n", keyring, m, s)
	}
	return b.String()
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// aptGet runs apt-get with the archive's options in dir.
func (a *Archive) aptGet(ctx context.Context, dir string, args ...string) error {
	if _, err := exec.LookPath("apt-get"); err != nil {
		return ErrNoAPT
	}
	return run(ctx, dir, "apt-get", append(append([]string(nil), a.options...), args...)...)
}

// SuiteOf says which suite a release is from, by its Debian ABI name:
// 6.1.0-56-amd64 is bookworm's, 6.12.95+deb12-amd64 bookworm-backports'
// (Debian 12's linux-6.12 in bookworm-security has the same suffix, and
// the same release to build with), 6.12.117+deb13-amd64 trixie's,
// 7.2.13+deb14-amd64 sid's; "" when the name does not say.
func SuiteOf(release string) string {
	switch {
	case strings.Contains(release, "+deb12-"):
		return "bookworm-backports"
	case strings.Contains(release, "+deb13-"):
		return "trixie"
	case strings.Contains(release, "+deb14-"):
		return "sid"
	case strings.HasPrefix(release, "6.1.0-"):
		return "bookworm"
	}
	return ""
}

// Releases are the Debian releases graft targets, by the suite name that
// names each (a suite's -updates and -security belong to it).
var Releases = []string{"bookworm", "bookworm-backports", "trixie", "sid"}

// InSuite reports whether a kernel offered by suite belongs to the release
// named by name: the suite itself, or its -updates or -security.
func InSuite(suite, name string) bool {
	return suite == name || suite == name+"-updates" || suite == name+"-security"
}

// ErrUnknownSuite means a suite name is not one of Releases.
var ErrUnknownSuite = errors.New("unknown Debian suite")

// SuiteKernels lists the kernels of a release (one of Releases) that
// graft's own apt state offers, newest first; flavour ("amd64",
// "cloud-amd64", "rt-amd64") keeps only that flavour when not "".
func (c *Cache) SuiteKernels(ctx context.Context, suite, flavour string) ([]Kernel, error) {
	if !slices.Contains(Releases, suite) {
		return nil, fmt.Errorf("%w %q: graft knows %s", ErrUnknownSuite, suite, strings.Join(Releases, ", "))
	}
	a, err := c.GraftArchive(ctx)
	if err != nil {
		return nil, err
	}
	all, err := a.Available(ctx)
	if err != nil {
		return nil, err
	}
	var out []Kernel
	for _, k := range all {
		if InSuite(k.Suite, suite) && (flavour == "" || Flavour(k.Release) == flavour) {
			out = append(out, k)
		}
	}
	return out, nil
}

// SuiteDefault returns the default kernel of a release (one of Releases)
// in the flavour ("" = amd64): what the suite's newest
// linux-image-FLAVOUR depends on.
func (c *Cache) SuiteDefault(ctx context.Context, suite, flavour string) (Kernel, error) {
	if !slices.Contains(Releases, suite) {
		return Kernel{}, fmt.Errorf("%w %q: graft knows %s", ErrUnknownSuite, suite, strings.Join(Releases, ", "))
	}
	if flavour == "" {
		flavour = "amd64"
	}
	a, err := c.GraftArchive(ctx)
	if err != nil {
		return Kernel{}, err
	}
	meta := "linux-image-" + flavour
	out, err := a.aptCache(ctx, "madison", meta)
	if err != nil {
		return Kernel{}, err
	}
	// madison lists the newest version first.
	for _, v := range parseMadison(out, meta) {
		if !InSuite(madisonSuite(out, meta, v), suite) {
			continue
		}
		fields, err := a.showPackage(ctx, meta, v)
		if err != nil {
			return Kernel{}, err
		}
		for _, dep := range parseDepends(fields["Depends"]) {
			if rel, ok := strings.CutPrefix(dep.name, "linux-image-"); ok && dep.version != "" {
				return a.Resolve(ctx, rel+"="+dep.version)
			}
		}
	}
	return Kernel{}, fmt.Errorf("%w: %s has no %s (see 'graft kernel list --suite %s')", ErrUnknownRelease, suite, meta, suite)
}

// Flavour is the flavour of a release: "amd64" for 6.1.0-56-amd64,
// "cloud-amd64" for 6.12.117+deb13-cloud-amd64.
func Flavour(release string) string {
	for _, f := range []string{"cloud-amd64", "rt-amd64"} {
		if strings.HasSuffix(release, "-"+f) {
			return f
		}
	}
	if i := strings.LastIndexByte(release, '-'); i >= 0 {
		return release[i+1:]
	}
	return ""
}

// Resolve finds the kernel for release (see the package function Resolve)
// in the machine's apt sources, or, when they do not offer it, in graft's
// own apt state. A release that is a suite name (one of Releases,
// optionally with a flavour: "trixie", "sid:cloud-amd64") means that
// suite's default kernel of the flavour (amd64 unless it says another):
// the one its meta-package linux-image-FLAVOUR depends on, as a machine
// of that release would install it.
func (c *Cache) Resolve(ctx context.Context, release string) (Kernel, error) {
	if suite, flavour, _ := strings.Cut(release, ":"); slices.Contains(Releases, suite) {
		return c.SuiteDefault(ctx, suite, flavour)
	}
	k, err := SystemArchive.Resolve(ctx, release)
	if err == nil || !errors.Is(err, ErrUnknownRelease) || release == "" {
		return k, err
	}
	g, gerr := c.GraftArchive(ctx)
	if gerr != nil {
		return Kernel{}, errors.Join(err, gerr)
	}
	k, gerr = g.Resolve(ctx, release)
	if errors.Is(gerr, ErrUnknownRelease) {
		// The lists may predate the release: once more with fresh ones.
		if g, err := c.graftArchive(ctx, true); err == nil {
			k, gerr = g.Resolve(ctx, release)
		}
	}
	if gerr != nil {
		return Kernel{}, gerr
	}
	return k, nil
}
