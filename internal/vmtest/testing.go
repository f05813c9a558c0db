package vmtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/graft-live/graft/distro/debian"
	"github.com/graft-live/graft/internal/fixtures"
	"github.com/graft-live/graft/internal/testenv"
	"github.com/graft-live/graft/vm"
	"github.com/graft-live/graft/vm/guest"
)

// InGuest reports whether this process runs inside a graft VM.
func InGuest() bool { return os.Getenv(guest.EnvInGuest) == "1" }

// Option configures Run.
type Option func(*options)

type options struct {
	files   func(t *testing.T) []vm.File
	timeout time.Duration
	memory  int
	release string
	append  string
}

// WithFiles adds files to the guest. files is called on the host only, so it
// can build fixtures with tools that the guest lacks.
func WithFiles(files func(t *testing.T) []vm.File) Option {
	return func(o *options) { o.files = files }
}

// WithTimeout limits the whole VM run (default 5 minutes).
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithMemory sets the guest memory in MiB (default 1024).
func WithMemory(mb int) Option { return func(o *options) { o.memory = mb } }

// WithKernel boots this Debian release instead of the test kernel
// (fixtures.Spec: $GRAFT_TEST_KERNEL, else Debian's default kernel).
func WithKernel(release string) Option { return func(o *options) { o.release = release } }

// WithAppend adds arguments to the guest kernel's command line.
func WithAppend(args string) Option { return func(o *options) { o.append = args } }

// Run runs fn inside a VM. On the host it boots the target kernel and runs
// this test binary in the guest, restricted to the calling test, streaming
// the guest's output to t.Log; the host test fails when the guest test fails.
// In the guest it calls fn(t). Without QEMU the test is skipped, except
// under CI=true, where it fails.
func Run(t *testing.T, fn func(t *testing.T), opts ...Option) {
	t.Helper()
	if InGuest() {
		fn(t)
		return
	}
	o := options{timeout: 5 * time.Minute, memory: 1024, release: fixtures.Spec().Release}
	for _, opt := range opts {
		opt(&o)
	}
	qemu, err := exec.LookPath("qemu-system-x86_64")
	if err != nil {
		testenv.SkipOrFail(t, "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
	}
	ctx := context.Background()
	if dl, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-10*time.Second))
		defer cancel()
	}
	target, err := testTarget(ctx, o.release)
	if err != nil {
		t.Fatalf("prepare the guest kernel: %v", err)
	}
	graft, err := GraftBinary()
	if err != nil {
		t.Fatalf("build graft for the guest: %v", err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var files []vm.File
	if o.files != nil {
		files = o.files(t)
	}
	const guestTest = "/graft/test.bin"
	files = append(files, vm.File{Host: self, Guest: guestTest, Mode: 0o755})

	out := &vm.LineWriter{Line: func(l string) { t.Log("guest: " + l) }}
	// The kernel console stays out of the log; its last lines explain a
	// failure (an oops, a refused module).
	var last []string
	console := &vm.LineWriter{Line: func(l string) {
		if l = strings.TrimRight(l, "\r"); strings.TrimSpace(l) != "" {
			last = append(last, l)
			if len(last) > consoleLines {
				last = last[1:]
			}
		}
	}}
	cfg := vm.Config{
		QEMU:    qemu,
		Image:   target.Image,
		Memory:  o.memory,
		CPUs:    guestCPUs(target.Kernel.Release),
		Timeout: o.timeout,
		Append:  o.append,
		Argv:    []string{guestTest, "-test.run", runPattern(t.Name()), "-test.v", "-test.count=1"},
		Env:     passEnv("CI", "GRAFT_TEST_VERBOSE"),
		Stdout:  out,
		Stderr:  out,
		Console: console,
		Initramfs: vm.Initramfs{
			Init:    graft,
			Busybox: target.Busybox,
			Files:   files,
		},
	}
	start := time.Now()
	code, err := vm.Exec(ctx, cfg)
	out.Flush()
	console.Flush()
	t.Logf("vm: %s, %v", target.Kernel, time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("vm: %v", err)
	}
	if code != 0 {
		msg := fmt.Sprintf("the test failed in the guest (exit status %d)", code)
		if len(last) > 0 {
			msg += "\nlast console lines:\n  " + strings.Join(last, "\n  ")
		}
		t.Fatal(msg)
	}
}

// runPattern turns a test name such as TestA/sub_case into the -test.run
// pattern that selects exactly it.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

func passEnv(keys ...string) []string {
	var env []string
	for _, k := range keys {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

var (
	targets   = map[string]*vm.Target{}
	targetsMu sync.Mutex
)

// testTarget prepares a kernel once per test process.
func testTarget(ctx context.Context, release string) (*vm.Target, error) {
	targetsMu.Lock()
	defer targetsMu.Unlock()
	if t, ok := targets[release]; ok {
		return t, nil
	}
	t, err := vm.PrepareTarget(ctx, release, nil)
	if err != nil {
		return nil, err
	}
	targets[release] = t
	return t, nil
}

// guestCPUs is how many CPUs a test guest of the release gets: 2, except
// on Linux 7 and later. Their livepatch transition toggles a static key in
// __schedule (klp_sched_try_switch_key), and under QEMU's TCG with 2 vCPUs
// Debian's 7.2.13 oopsed on an int3 there within a few transitions,
// measured with the kernel's own samples/livepatch/livepatch-sample.ko and
// plain insmod as much as with graft's modules; with 1 vCPU, 27 transitions
// passed, and 6.12 passed 15 with 2.
func guestCPUs(release string) int {
	series, err := debian.SourceSeries(release)
	major, _, _ := strings.Cut(series, ".")
	if n, aerr := strconv.Atoi(major); err == nil && aerr == nil && n >= 7 {
		return 1
	}
	return 2
}

// consoleLines is how many console lines a failure shows.
const consoleLines = 25
