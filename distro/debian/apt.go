package debian

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// DefaultMetapackage is the package whose dependency names the default
// kernel.
const DefaultMetapackage = "linux-image-amd64"

// Kernel names one Debian kernel build.
type Kernel struct {
	// Release is the ABI release, as in uname -r: "6.1.0-56-amd64".
	Release string `json:"release"`
	// Version is the Debian package version: "6.1.192-2".
	Version string `json:"version"`
	// Suite is the suite that offers it ("bookworm-security", "sid"), when
	// known.
	Suite string `json:"suite,omitempty"`
	// archive is where the packages come from (nil: the machine's own
	// apt sources).
	archive *Archive
}

// Archive returns where the kernel's packages come from.
func (k Kernel) Archive() *Archive {
	if k.archive == nil {
		return SystemArchive
	}
	return k.archive
}

func (k Kernel) String() string { return k.Release + " (" + k.Version + ")" }

func (k Kernel) imagePackage() string { return "linux-image-" + k.Release }

// Resolve finds the kernel for release: "" means the candidate of
// linux-image-amd64 (what apt-get install would install, so that a machine
// with bookworm-backports in its sources keeps its release's kernel),
// "6.1.0-56-amd64" the candidate of that image package, and
// "6.1.0-56-amd64=6.1.192-1" pins a package version.
func Resolve(ctx context.Context, release string) (Kernel, error) {
	return SystemArchive.Resolve(ctx, release)
}

// Resolve finds the kernel for release in the archive; see the package
// function Resolve.
func (a *Archive) Resolve(ctx context.Context, release string) (Kernel, error) {
	if release == "" {
		return a.resolveDefault(ctx)
	}
	rel, ver, pinned := strings.Cut(release, "=")
	rel = strings.TrimPrefix(rel, "linux-image-")
	k := Kernel{Release: rel, Version: ver, archive: a}
	pkg := k.imagePackage()
	out, err := a.aptCache(ctx, "madison", pkg)
	if err != nil {
		return Kernel{}, err
	}
	versions := parseMadison(out, pkg)
	if len(versions) == 0 {
		return Kernel{}, fmt.Errorf("%w: no package %s in %s (see 'graft kernel list'; run 'apt-get update' if the lists are old)", ErrUnknownRelease, pkg, a)
	}
	if !pinned {
		k.Version = versions[0]
		if c, err := a.candidate(ctx, pkg); err == nil && c != "" {
			k.Version = c
		}
	} else if !slices.Contains(versions, ver) {
		return Kernel{}, fmt.Errorf("%w: %s has no version %s in %s (available: %s)", ErrUnknownRelease, pkg, ver, a, strings.Join(versions, ", "))
	}
	k.Suite = madisonSuite(out, pkg, k.Version)
	return k, nil
}

func (a *Archive) resolveDefault(ctx context.Context) (Kernel, error) {
	fields, err := a.showPackage(ctx, DefaultMetapackage, "")
	if err != nil {
		return Kernel{}, err
	}
	for _, dep := range parseDepends(fields["Depends"]) {
		if rel, ok := strings.CutPrefix(dep.name, "linux-image-"); ok && dep.version != "" {
			return a.Resolve(ctx, rel+"="+dep.version)
		}
	}
	return Kernel{}, fmt.Errorf("%s does not depend on a linux-image package", DefaultMetapackage)
}

// Available lists the kernel images (linux-image-RELEASE, signed or not,
// without meta-packages and debug packages) that the machine's apt sources
// offer, newest release first.
func Available(ctx context.Context) ([]Kernel, error) {
	return SystemArchive.Available(ctx)
}

// Available lists the kernel images that the archive offers, newest
// release first, each with its suite.
func (a *Archive) Available(ctx context.Context) ([]Kernel, error) {
	out, err := a.aptCache(ctx, "search", "--names-only", `^linux-image-[0-9].*-amd64(-unsigned)?$`)
	if err != nil {
		return nil, err
	}
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		name, desc, _ := strings.Cut(sc.Text(), " - ")
		if strings.Contains(desc, "meta-package") || strings.HasSuffix(name, "-unsigned") {
			continue
		}
		names = append(names, name)
	}
	if len(names) == 0 {
		return nil, nil
	}
	out, err = a.aptCache(ctx, append([]string{"madison"}, names...)...)
	if err != nil {
		return nil, err
	}
	var ks []Kernel
	for _, name := range names {
		for _, v := range parseMadison(out, name) {
			ks = append(ks, Kernel{Release: strings.TrimPrefix(name, "linux-image-"), Version: v, Suite: madisonSuite(out, name, v), archive: a})
		}
	}
	sort.SliceStable(ks, func(i, j int) bool { return naturalLess(ks[j].Release, ks[i].Release) })
	return ks, nil
}

// packageVersions lists the versions of pkg that the archive offers,
// newest first.
func (a *Archive) packageVersions(ctx context.Context, pkg string) ([]string, error) {
	out, err := a.aptCache(ctx, "madison", pkg)
	if err != nil {
		return nil, err
	}
	return parseMadison(out, pkg), nil
}

// madisonSuite returns the suite of the madison line of pkg at version:
// "... | http://deb.debian.org/debian sid/main amd64 Packages" gives sid.
func madisonSuite(out []byte, pkg, version string) string {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "|")
		if len(f) < 3 || strings.TrimSpace(f[0]) != pkg || strings.TrimSpace(f[1]) != version {
			continue
		}
		src := strings.Fields(f[2])
		if len(src) >= 2 {
			suite, _, _ := strings.Cut(src[1], "/")
			return suite
		}
	}
	return ""
}

// parseMadison reads `apt-cache madison PKG` lines: "pkg | version | source".
func parseMadison(out []byte, pkg string) []string {
	var vs []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "|")
		if len(f) < 3 || strings.TrimSpace(f[0]) != pkg {
			continue
		}
		v := strings.TrimSpace(f[1])
		if !seen[v] {
			seen[v] = true
			vs = append(vs, v)
		}
	}
	return vs
}

// candidate is the version of pkg that apt-get install would install
// ("" when none).
func (a *Archive) candidate(ctx context.Context, pkg string) (string, error) {
	out, err := a.aptCache(ctx, "policy", pkg)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Candidate:"); ok {
			v = strings.TrimSpace(v)
			if v == "(none)" {
				return "", nil
			}
			return v, nil
		}
	}
	return "", nil
}

// showPackage returns the control fields of pkg at version ("" = candidate).
func (a *Archive) showPackage(ctx context.Context, pkg, version string) (map[string]string, error) {
	arg := pkg
	if version != "" {
		arg += "=" + version
	} else {
		v, err := a.candidate(ctx, pkg)
		if err != nil {
			return nil, err
		}
		if v == "" {
			return nil, fmt.Errorf("%w: no package %s in %s (run 'apt-get update'?)", ErrUnknownRelease, pkg, a)
		}
		arg += "=" + v
	}
	out, err := a.aptCache(ctx, "show", arg)
	if err != nil {
		return nil, fmt.Errorf("%w: apt-cache show %s: %v", ErrUnknownRelease, arg, err)
	}
	return parseControl(out), nil
}

// parseControl reads the first stanza of Debian control data.
func parseControl(out []byte) map[string]string {
	fields := map[string]string{}
	var last string
	for _, line := range strings.Split(string(out), "\n") {
		if line == "" {
			if len(fields) > 0 {
				break
			}
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if last != "" {
				fields[last] += "\n" + strings.TrimSpace(line)
			}
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		last = k
		fields[k] = strings.TrimSpace(v)
	}
	return fields
}

type dependency struct{ name, op, version string }

// satisfying returns the version of d's package to fetch: the one an "="
// dependency names; for ">=", def when the archive has it, else the
// newest version at least as new; def without a version.
func (a *Archive) satisfying(ctx context.Context, d dependency, def string) (string, error) {
	switch {
	case d.op == "=":
		return d.version, nil
	case d.op != ">=" || d.version == "":
		return def, nil
	}
	vs, err := a.packageVersions(ctx, d.name)
	if err != nil {
		return "", err
	}
	if slices.Contains(vs, def) {
		return def, nil
	}
	// packageVersions lists the newest first.
	for _, v := range vs {
		if versionAtLeast(ctx, v, d.version) {
			return v, nil
		}
	}
	return "", fmt.Errorf("%w: no %s >= %s in %s (available: %s)", ErrUnknownRelease, d.name, d.version, a, strings.Join(vs, ", "))
}

// versionAtLeast compares Debian versions as dpkg does.
func versionAtLeast(ctx context.Context, v, min string) bool {
	return exec.CommandContext(ctx, "dpkg", "--compare-versions", v, "ge", min).Run() == nil
}

// parseDepends reads a Depends field; of alternatives ("a | b") it keeps
// the first.
func parseDepends(s string) []dependency {
	var deps []dependency
	for _, part := range strings.Split(s, ",") {
		alt, _, _ := strings.Cut(part, "|")
		alt = strings.TrimSpace(alt)
		if alt == "" {
			continue
		}
		d := dependency{name: alt}
		if i := strings.Index(alt, "("); i >= 0 {
			d.name = strings.TrimSpace(alt[:i])
			rel := strings.Trim(alt[i:], "() ")
			d.op, d.version, _ = strings.Cut(rel, " ")
			d.version = strings.TrimSpace(d.version)
		}
		d.name, _, _ = strings.Cut(d.name, ":")
		deps = append(deps, d)
	}
	return deps
}

func (a *Archive) aptCache(ctx context.Context, args ...string) ([]byte, error) {
	path, err := exec.LookPath("apt-cache")
	if err != nil {
		return nil, ErrNoAPT
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, append(append([]string(nil), a.options...), args...)...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("apt-cache %s: %s", strings.Join(args, " "), strings.TrimSpace(stderr.String()))
		}
		return nil, err
	}
	return out, nil
}

// naturalLess compares strings with embedded numbers by value, so that
// 6.1.0-9 sorts before 6.1.0-56.
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		ca, ra := chunk(a)
		cb, rb := chunk(b)
		if ca != cb {
			na, ea := strconv.Atoi(ca)
			nb, eb := strconv.Atoi(cb)
			if ea == nil && eb == nil {
				return na < nb
			}
			return ca < cb
		}
		a, b = ra, rb
	}
	return len(a) < len(b)
}

// chunk splits off a leading run of digits or of non-digits.
func chunk(s string) (string, string) {
	digit := func(c byte) bool { return c >= '0' && c <= '9' }
	i := 1
	for i < len(s) && digit(s[i]) == digit(s[0]) {
		i++
	}
	return s[:i], s[i:]
}
