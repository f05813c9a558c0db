package debian

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graft-live/graft/internal/testenv"
)

// needAPT skips (or fails under CI=true) without apt and package lists.
func needAPT(t *testing.T) {
	t.Helper()
	reason := ""
	if _, err := exec.LookPath("apt-get"); err != nil {
		reason = "apt-get is not installed"
	} else if out, _ := exec.Command("apt-cache", "policy", DefaultMetapackage).Output(); !strings.Contains(string(out), "Candidate") {
		reason = "no apt package lists (run apt-get update)"
	}
	if reason != "" {
		testenv.SkipOrFail(t, "%s", reason)
	}
}

func TestResolve(t *testing.T) {
	needAPT(t)
	ctx := context.Background()
	def, err := Resolve(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(def.Release, "-amd64") || def.Version == "" {
		t.Fatalf("default kernel %+v", def)
	}
	byName, err := Resolve(ctx, def.Release)
	if err != nil || byName != def {
		t.Errorf("Resolve(%q) = %+v, %v; want %+v", def.Release, byName, err, def)
	}
	pinned, err := Resolve(ctx, "linux-image-"+def.Release+"="+def.Version)
	if err != nil || pinned != def {
		t.Errorf("pinned = %+v, %v", pinned, err)
	}
	_, err = Resolve(ctx, "9.9.9-99-amd64")
	if !errors.Is(err, ErrUnknownRelease) || !strings.Contains(err.Error(), "linux-image-9.9.9-99-amd64") || !strings.Contains(err.Error(), "graft kernel list") {
		t.Errorf("unknown release: %v", err)
	}
	_, err = Resolve(ctx, def.Release+"=0.0-0")
	if !errors.Is(err, ErrUnknownRelease) || !strings.Contains(err.Error(), def.Version) {
		t.Errorf("unknown version: %v", err)
	}
	avail, err := Available(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, k := range avail {
		found = found || k == def
		if strings.HasSuffix(k.Release, "-dbg") || strings.HasSuffix(k.Release, "-unsigned") {
			t.Errorf("Available lists %s", k.Release)
		}
	}
	if !found {
		t.Errorf("Available does not list the default %s", def)
	}
}

// TestFetch fetches the default kernel's image and headers into a fresh
// cache, from two goroutines at once, and checks the files.
func TestFetch(t *testing.T) {
	needAPT(t)
	ctx := context.Background()
	k, err := Resolve(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	trees := make([]*Tree, 2)
	errs := make([]error, 2)
	var events sync.Map
	for i := range trees {
		wg.Add(1)
		go func() {
			defer wg.Done()
			trees[i], errs[i] = c.Fetch(ctx, k, Image|Headers, func(e Event) { events.Store(e.Phase+" "+e.Package, true) })
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("fetch %d: %v", i, err)
		}
	}
	tr := trees[0]
	if tr.Parts != Image|Headers {
		t.Errorf("Parts = %v", tr.Parts)
	}
	for _, p := range []string{tr.Vmlinuz, tr.Config, filepath.Join(tr.ModulesDir, "modules.order"),
		filepath.Join(tr.HeadersDir, "Module.symvers"), filepath.Join(tr.HeadersDir, "scripts", "Makefile.build")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("missing after fetch: %v", err)
		}
	}
	mk, _ := os.ReadFile(filepath.Join(tr.HeadersDir, "Makefile"))
	if installedPath.Match(mk) || !strings.Contains(string(mk), tr.Dir) {
		t.Errorf("headers Makefile still points outside the cache:\n%s", mk)
	}
	if _, ok := events.Load("download linux-image-" + k.Release); !ok {
		t.Error("no download progress reported")
	}
	list, err := c.List()
	if err != nil || len(list) != 1 || list[0].Release != k.Release || list[0].Version != k.Version {
		t.Errorf("List = %+v, %v", list, err)
	}
	noTemporaries(t, tr.Dir)
}

// noTemporaries fails if a fill left a temporary directory in dir.
func noTemporaries(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary %s left in the cache", e.Name())
		}
	}
}

// TestFetchInterrupted cancels a fetch midway: the part must not appear, and
// a later fetch must complete it.
func TestFetchInterrupted(t *testing.T) {
	needAPT(t)
	k, err := Resolve(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	_, err = c.Fetch(ctx, k, Image, func(e Event) {
		if e.Phase == "extract" {
			cancel() // kills dpkg-deb mid-extraction
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled fetch: error %v, want context.Canceled", err)
	}
	tr, _ := c.Lookup(k)
	if tr.Parts != 0 {
		t.Fatalf("an interrupted fetch left parts %v", tr.Parts)
	}
	time.Sleep(100 * time.Millisecond)
	tr, err = c.Fetch(context.Background(), k, Image, nil)
	if err != nil || tr.Parts != Image {
		t.Fatalf("fetch after the interruption: %v, %v", tr.Parts, err)
	}
	noTemporaries(t, tr.Dir)
}

func TestPackage(t *testing.T) {
	needAPT(t)
	c, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir, err := c.Package(context.Background(), "busybox-static", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, "bin", "busybox")); err != nil || st.Mode()&0o111 == 0 {
		t.Fatalf("busybox not unpacked: %v", err)
	}
	if _, err := c.Package(context.Background(), "no-such-package-graft", "", nil); !errors.Is(err, ErrUnknownRelease) {
		t.Errorf("unknown package: %v", err)
	}
}

// TestFetchSymbols fetches the 860 MB debug package; it runs only with
// GRAFT_TEST_SYMBOLS=1.
func TestFetchSymbols(t *testing.T) {
	if os.Getenv("GRAFT_TEST_SYMBOLS") != "1" {
		t.Skip("downloads about 860 MB: set GRAFT_TEST_SYMBOLS=1")
	}
	needAPT(t)
	k, err := Resolve(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tr, err := c.Fetch(context.Background(), k, Symbols, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := os.ReadFile(tr.SystemMap)
	if err != nil {
		t.Fatal(err)
	}
	// The real map has the local symbols that the image's placeholder lacks.
	if !strings.Contains(string(m), " t cmdline_proc_show\n") {
		t.Errorf("%s has no cmdline_proc_show", tr.SystemMap)
	}
	if st, err := os.Stat(tr.Vmlinux); err != nil || st.Size() < 100<<20 {
		t.Errorf("debug vmlinux: %v", err)
	}
}

// TestSuites resolves each Debian release graft targets by its suite name
// in graft's own apt state: the default kernel of the suite, whose ABI
// name says the same suite, and the suite's flavours.
func TestSuites(t *testing.T) {
	needAPT(t)
	ctx := context.Background()
	c, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, suite := range Releases {
		t.Run(suite, func(t *testing.T) {
			k, err := c.Resolve(ctx, suite)
			if err != nil {
				t.Fatal(err)
			}
			if !InSuite(k.Suite, suite) || !InSuite(SuiteOf(k.Release), suite) || Flavour(k.Release) != "amd64" {
				t.Errorf("%s resolves to %s of suite %q (by its name: %q, flavour %q)", suite, k, k.Suite, SuiteOf(k.Release), Flavour(k.Release))
			}
			ks, err := c.SuiteKernels(ctx, suite, "")
			if err != nil {
				t.Fatal(err)
			}
			flavours := map[string]bool{}
			for _, x := range ks {
				flavours[Flavour(x.Release)] = true
				if !InSuite(x.Suite, suite) {
					t.Errorf("SuiteKernels(%s) lists %s of %s", suite, x, x.Suite)
				}
			}
			for _, f := range []string{"amd64", "cloud-amd64", "rt-amd64"} {
				if !flavours[f] {
					t.Errorf("%s offers no %s kernel: %v", suite, f, ks)
				}
			}
			cloud, err := c.Resolve(ctx, suite+":cloud-amd64")
			if err != nil || Flavour(cloud.Release) != "cloud-amd64" {
				t.Errorf("%s:cloud-amd64 = %s, %v", suite, cloud, err)
			}
		})
	}
	if _, err := c.Resolve(ctx, "jessie"); !errors.Is(err, ErrUnknownRelease) {
		t.Errorf("jessie: %v, want ErrUnknownRelease", err)
	}
	if _, err := c.SuiteKernels(ctx, "jessie", ""); !errors.Is(err, ErrUnknownSuite) {
		t.Errorf("SuiteKernels(jessie): %v, want ErrUnknownSuite", err)
	}
}

// TestSourceShared fetches the source of the default kernel and of its
// cloud flavour: both are one tree, unpacked once.
func TestSourceShared(t *testing.T) {
	needAPT(t)
	ctx := context.Background()
	k, err := Resolve(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	cloud, err := Resolve(ctx, strings.TrimSuffix(k.Release, "-amd64")+"-cloud-amd64="+k.Version)
	if err != nil {
		t.Skipf("no cloud flavour of %s: %v", k, err)
	}
	c, err := OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.Fetch(ctx, k, Source, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Fetch(ctx, cloud, Source, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.SourceDir != b.SourceDir || !strings.HasPrefix(a.SourceDir, filepath.Join(c.Dir(), "sources")+"/") {
		t.Errorf("source trees %s and %s; want one under sources/", a.SourceDir, b.SourceDir)
	}
	if _, err := os.Stat(filepath.Join(a.SourceDir, "fs", "proc", "cmdline.c")); err != nil {
		t.Error(err)
	}
	if fi, err := os.Lstat(filepath.Join(a.Dir, "source")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the kernel's source is not a link to the shared tree: %v %v", fi, err)
	}
	if _, err := c.Source(ctx, "6.1", "0.0-0", nil); !errors.Is(err, ErrUnknownRelease) {
		t.Errorf("Source of an unknown version: %v", err)
	}
}
