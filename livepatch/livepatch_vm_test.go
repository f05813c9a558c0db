package livepatch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/graft-live/graft/internal/fixtures"
	"github.com/graft-live/graft/internal/vmtest"
	"github.com/graft-live/graft/kmod"
	"github.com/graft-live/graft/livepatch"
	"github.com/graft-live/graft/vm"
)

// Guest paths of the fixtures.
const fix = "/fixtures/"

// fixtureFiles builds the livepatch fixtures on the host, plus broken
// variants for the error cases.
func fixtureFiles(t *testing.T) []vm.File {
	t.Helper()
	mods, err := fixtures.Build(context.Background())
	if err != nil {
		t.Fatalf("build fixtures: %v", err)
	}
	var files []vm.File
	for name, p := range mods {
		files = append(files, vm.File{Host: p, Guest: fix + name})
	}
	sample, err := os.ReadFile(mods.Path("livepatch-sample.ko"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// Truncated in the middle of its sections.
	trunc := filepath.Join(dir, "truncated.ko")
	os.WriteFile(trunc, sample[:len(sample)/2], 0o644)
	// The same module with another release in its vermagic.
	m, err := kmod.Open(mods.Path("livepatch-sample.ko"))
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	rel := m.Release()
	other := strings.Replace(rel, rel[:1], string(rune(rel[0]+1)), 1)
	wrong := filepath.Join(dir, "wrong-kernel.ko")
	os.WriteFile(wrong, bytes.Replace(sample, []byte("vermagic="+rel), []byte("vermagic="+other), 1), 0o644)
	return append(files,
		vm.File{Host: trunc, Guest: fix + "truncated.ko"},
		vm.File{Host: wrong, Guest: fix + "wrong-kernel.ko"})
}

type result struct {
	stdout, stderr string
	code           int
}

// graft runs the graft binary in the guest, as an operator would.
func graft(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, nil, "graft", args...)
}

func run(t *testing.T, cred *syscall.Credential, name string, args ...string) result {
	t.Helper()
	cmd := exec.Command(name, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	err := cmd.Run()
	r := result{stdout: o.String(), stderr: e.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	t.Logf("$ %s %s -> %d\n%s%s", name, strings.Join(args, " "), r.code, r.stdout, r.stderr)
	return r
}

func mustGraft(t *testing.T, args ...string) result {
	t.Helper()
	r := graft(t, args...)
	if r.code != 0 {
		t.Fatalf("graft %v: exit %d: %s", args, r.code, r.stderr)
	}
	return r
}

func status(t *testing.T) livepatch.Status {
	t.Helper()
	r := mustGraft(t, "status", "--json")
	var st livepatch.Status
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	return st
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func loaded(t *testing.T, module string) bool {
	t.Helper()
	for _, line := range strings.Split(readFile(t, "/proc/modules"), "\n") {
		if strings.HasPrefix(line, module+" ") {
			return true
		}
	}
	return false
}

// cleanup leaves the guest without livepatches for the next subtest.
func cleanup(t *testing.T) {
	t.Helper()
	mustGraft(t, "revert", "--all", "-q")
	if st := status(t); len(st.Patches) != 0 {
		t.Fatalf("patches left after revert --all: %+v", st.Patches)
	}
}

func functionOwners(st livepatch.Status) map[string]string {
	return st.Owners()
}

// TestManage runs the manager's scenarios against the real kernel, in one
// boot: apply, status, revert, stacking, atomic replace, callbacks, shadow
// variables, a stalled transition, and bad input.
func TestManage(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		origCmdline := readFile(t, "/proc/cmdline")

		t.Run("apply status revert", func(t *testing.T) {
			r := mustGraft(t, "apply", fix+"livepatch-sample.ko")
			if !strings.Contains(r.stdout, "livepatch_sample: applied") {
				t.Errorf("apply said %q", r.stdout)
			}
			if got := readFile(t, "/proc/cmdline"); got != "this has been live patched\n" {
				t.Fatalf("/proc/cmdline after apply = %q", got)
			}
			st := status(t)
			if st.State != livepatch.StateReady || !st.Tainted || len(st.Pending) != 0 {
				t.Errorf("state %q tainted %v pending %d; want ready, tainted, none pending", st.State, st.Tainted, len(st.Pending))
			}
			if len(st.Patches) != 1 {
				t.Fatalf("patches = %+v", st.Patches)
			}
			p := st.Patches[0]
			if p.Name != "livepatch_sample" || !p.Enabled || p.Transition || p.Progress != nil {
				t.Errorf("patch = %+v", p)
			}
			if len(p.Objects) != 1 || p.Objects[0].Name != "vmlinux" || p.Objects[0].Patched == nil || !*p.Objects[0].Patched {
				t.Fatalf("objects = %+v", p.Objects)
			}
			fns := p.Objects[0].Functions
			if len(fns) != 1 || fns[0].Name != "cmdline_proc_show" || fns[0].Sympos != 1 || fns[0].Owner != "livepatch_sample" {
				t.Errorf("functions = %+v", fns)
			}
			if r := graft(t, "status", "--check"); r.code != 0 || r.stdout != "" {
				t.Errorf("status --check: exit %d, output %q", r.code, r.stdout)
			}
			prom := mustGraft(t, "status", "--format", "prometheus").stdout
			for _, want := range []string{`graft_livepatch_enabled{patch="livepatch_sample"} 1`, `graft_livepatch_state{state="ready"} 1`, "graft_livepatch_tainted 1"} {
				if !strings.Contains(prom, want+"\n") {
					t.Errorf("prometheus output lacks %q:\n%s", want, prom)
				}
			}
			if r := graft(t, "apply", fix+"livepatch-sample.ko"); r.code != 6 || !strings.Contains(r.stderr, "already loaded") {
				t.Errorf("second apply: exit %d, %q; want 6, already loaded", r.code, r.stderr)
			}
			mustGraft(t, "revert", "livepatch_sample")
			if got := readFile(t, "/proc/cmdline"); got != origCmdline {
				t.Errorf("/proc/cmdline after revert = %q, want %q", got, origCmdline)
			}
			if loaded(t, "livepatch_sample") {
				t.Error("module still loaded after revert")
			}
			if st := status(t); len(st.Patches) != 0 {
				t.Errorf("patches after revert: %+v", st.Patches)
			}
		})

		t.Run("kprobes on patched functions are named", func(t *testing.T) {
			defer cleanup(t)
			events := "/sys/kernel/debug/tracing/kprobe_events"
			probes := "p:graft_entry cmdline_proc_show\nr:graft_ret cmdline_proc_show\np:graft_other version_proc_show\n"
			if err := os.WriteFile(events, []byte(probes), 0o644); err != nil {
				t.Fatalf("add kprobes: %v", err)
			}
			defer os.WriteFile(events, nil, 0o644)
			r := mustGraft(t, "apply", fix+"livepatch-sample.ko")
			for _, want := range []string{"warning: kprobe on cmdline_proc_show+0x0:", "warning: kretprobe on cmdline_proc_show+0x0:"} {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("apply's stderr lacks %q", want)
				}
			}
			if strings.Contains(r.stderr, "version_proc_show") {
				t.Error("apply warned about a probe on a function the patch does not replace")
			}
			if strings.Contains(r.stdout, "warning") {
				t.Error("a warning went to stdout")
			}
		})

		t.Run("stacked patches and ownership", func(t *testing.T) {
			defer cleanup(t)
			mustGraft(t, "apply", fix+"livepatch-sample.ko")
			mustGraft(t, "apply", fix+"test_klp_livepatch.ko")
			if got := readFile(t, "/proc/cmdline"); got != "test_klp_livepatch: this has been live patched\n" {
				t.Fatalf("/proc/cmdline = %q", got)
			}
			st := status(t)
			if len(st.Patches) != 2 || st.Patches[0].Name != "test_klp_livepatch" {
				t.Fatalf("want two patches, newest first: %+v", st.Patches)
			}
			for _, p := range st.Patches {
				if o := p.Objects[0].Functions[0].Owner; o != "test_klp_livepatch" {
					t.Errorf("%s: cmdline_proc_show owned by %q, want the newest patch", p.Name, o)
				}
			}
			mustGraft(t, "revert", fix+"test_klp_livepatch.ko")
			if got := readFile(t, "/proc/cmdline"); got != "this has been live patched\n" {
				t.Errorf("after reverting the newest: /proc/cmdline = %q, want the older patch's", got)
			}
			if o := functionOwners(status(t))["vmlinux/cmdline_proc_show,1"]; o != "livepatch_sample" {
				t.Errorf("owner after revert = %q", o)
			}
		})

		t.Run("atomic replace", func(t *testing.T) {
			defer cleanup(t)
			mustGraft(t, "apply", fix+"livepatch-sample.ko")
			mustGraft(t, "apply", fix+"test_klp_atomic_replace.ko", "replace=1")
			if got := readFile(t, "/proc/cmdline"); got != origCmdline {
				t.Errorf("the replaced patch still acts: /proc/cmdline = %q", got)
			}
			if got := readFile(t, "/proc/meminfo"); got != "test_klp_atomic_replace: this has been live patched\n" {
				t.Errorf("/proc/meminfo = %q", got)
			}
			st := status(t)
			if len(st.Patches) != 1 || st.Patches[0].Name != "test_klp_atomic_replace" {
				t.Errorf("after replace: %+v", st.Patches)
			}
			if !loaded(t, "livepatch_sample") {
				t.Error("the replaced patch's module should stay loaded until reverted")
			}
			mustGraft(t, "revert", "--all")
			if loaded(t, "livepatch_sample") || loaded(t, "test_klp_atomic_replace") {
				t.Error("modules left after revert --all")
			}
		})

		t.Run("callbacks", func(t *testing.T) {
			defer cleanup(t)
			run(t, nil, "insmod", fix+"test_klp_callbacks_mod.ko")
			defer run(t, nil, "rmmod", "test_klp_callbacks_mod")
			mustGraft(t, "apply", fix+"test_klp_callbacks_demo.ko")
			mustGraft(t, "revert", "test_klp_callbacks_demo")
			log := run(t, nil, "dmesg").stdout
			for _, want := range []string{
				"pre_patch_callback: vmlinux", "post_patch_callback: vmlinux",
				"pre_patch_callback: test_klp_callbacks_mod -> [MODULE_STATE_LIVE]",
				"pre_unpatch_callback: vmlinux", "post_unpatch_callback: vmlinux",
			} {
				if !strings.Contains(log, want) {
					t.Errorf("kernel log lacks %q", want)
				}
			}
		})

		t.Run("shadow variables stacked", func(t *testing.T) {
			defer cleanup(t)
			run(t, nil, "insmod", fix+"livepatch-shadow-mod.ko")
			defer run(t, nil, "rmmod", "livepatch_shadow_mod")
			mustGraft(t, "apply", fix+"livepatch-shadow-fix1.ko")
			mustGraft(t, "apply", fix+"livepatch-shadow-fix2.ko")
			owners := functionOwners(status(t))
			want := map[string]string{
				"livepatch_shadow_mod/dummy_alloc,1": "livepatch_shadow_fix1",
				"livepatch_shadow_mod/dummy_free,1":  "livepatch_shadow_fix2",
				"livepatch_shadow_mod/dummy_check,1": "livepatch_shadow_fix2",
			}
			for fn, o := range want {
				if owners[fn] != o {
					t.Errorf("%s owned by %q, want %q (all: %v)", fn, owners[fn], o, owners)
				}
			}
		})

		t.Run("stalled transition is reversed", func(t *testing.T) {
			run(t, nil, "insmod", fix+"test_klp_callbacks_busy.ko", "block_transition=Y")
			defer run(t, nil, "rmmod", "test_klp_callbacks_busy")
			r := graft(t, "apply", "--timeout", "3s", fix+"test_klp_callbacks_demo.ko")
			if r.code != 5 {
				t.Fatalf("exit %d, want 5 (stalled)", r.code)
			}
			for _, want := range []string{"stalled", "kworker", "busymod_work_func", "reversed"} {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stall report lacks %q", want)
				}
			}
			if loaded(t, "test_klp_callbacks_demo") {
				t.Error("the stalled patch's module is still loaded")
			}
			if st := status(t); st.State != livepatch.StateReady || len(st.Patches) != 0 {
				t.Errorf("after the reversal: %+v", st)
			}
		})

		t.Run("interrupted apply is reversed", func(t *testing.T) {
			run(t, nil, "insmod", fix+"test_klp_callbacks_busy.ko", "block_transition=Y")
			defer run(t, nil, "rmmod", "test_klp_callbacks_busy")
			cmd := exec.Command("graft", "apply", "-q", fix+"test_klp_callbacks_demo.ko")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Second)
			cmd.Process.Signal(syscall.SIGINT)
			err := cmd.Wait()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
				t.Errorf("graft apply interrupted: %v (stderr %q), want exit 130", err, stderr.String())
			}
			if loaded(t, "test_klp_callbacks_demo") {
				t.Error("the interrupted patch's module is still loaded")
			}
		})

		t.Run("stalled transition kept", func(t *testing.T) {
			run(t, nil, "insmod", fix+"test_klp_callbacks_busy.ko", "block_transition=Y")
			r := graft(t, "apply", "--timeout", "2s", "--keep-on-stall", fix+"test_klp_callbacks_demo.ko")
			if r.code != 5 || !strings.Contains(r.stderr, "left in transition") {
				t.Fatalf("exit %d, %q", r.code, r.stderr)
			}
			st := status(t)
			if st.State != livepatch.StateStalled || len(st.Patches) != 1 || !st.Patches[0].Transition {
				t.Fatalf("status = %+v", st)
			}
			p := st.Patches[0].Progress
			if p == nil || p.Target != "patched" || p.Total == 0 || p.Done >= p.Total {
				t.Errorf("progress = %+v", p)
			}
			blocked := false
			for _, task := range st.Pending {
				blocked = blocked || strings.Contains(strings.Join(task.Blocking, ","), "busymod_work_func")
			}
			if !blocked {
				t.Errorf("no pending task blocked in busymod_work_func: %+v", st.Pending)
			}
			if r := graft(t, "status", "--check"); r.code != 5 {
				t.Errorf("status --check exit %d, want 5", r.code)
			}
			if r := graft(t, "force", "test_klp_callbacks_demo"); r.code != 2 || !strings.Contains(r.stderr, "never be unloaded") {
				t.Errorf("force without confirmation: exit %d, %q", r.code, r.stderr)
			}
			mustGraft(t, "revert", "--timeout", "20s", "test_klp_callbacks_demo")
			run(t, nil, "rmmod", "test_klp_callbacks_busy")
			if loaded(t, "test_klp_callbacks_demo") {
				t.Error("module still loaded")
			}
		})

		t.Run("incompatible cumulative patch refused", func(t *testing.T) {
			defer cleanup(t)
			mustGraft(t, "apply", fix+"test_klp_state2.ko")
			r := graft(t, "apply", fix+"test_klp_state.ko")
			if r.code != 6 || !strings.Contains(r.stderr, "not compatible with the already installed livepatches") {
				t.Errorf("exit %d, %q; want 6 with the kernel's reason", r.code, r.stderr)
			}
			if loaded(t, "test_klp_state") {
				t.Error("the refused patch is loaded")
			}
			if st := status(t); len(st.Patches) != 1 || st.Patches[0].Name != "test_klp_state2" || !st.Patches[0].Enabled {
				t.Errorf("status after the refusal: %+v", st.Patches)
			}
		})

		t.Run("bad input", func(t *testing.T) {
			tests := []struct {
				args []string
				code int
				msg  string
			}{
				{[]string{"apply", fix + "test_klp_callbacks_busy.ko"}, 6, "not a livepatch"},
				{[]string{"apply", fix + "wrong-kernel.ko"}, 6, "built for"},
				{[]string{"apply", fix + "truncated.ko"}, 6, "corrupted"},
				{[]string{"apply", "/nonexistent.ko"}, 3, "/nonexistent.ko"},
				{[]string{"revert", "no_such_patch"}, 3, "no such livepatch"},
				{[]string{"force", "no_such_patch", "--yes-i-understand"}, 3, "no such livepatch"},
				{[]string{"revert"}, 2, "--all"},
			}
			for _, tc := range tests {
				r := graft(t, tc.args...)
				if r.code != tc.code || !strings.Contains(r.stderr, tc.msg) {
					t.Errorf("graft %v: exit %d, %q; want %d and %q", tc.args, r.code, r.stderr, tc.code, tc.msg)
				}
			}
			if loaded(t, "livepatch_sample") {
				t.Error("a refused module was loaded")
			}
			nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
			if r := run(t, nobody, "/bin/graft", "apply", fix+"livepatch-sample.ko"); r.code != 4 || !strings.Contains(r.stderr, "root") {
				t.Errorf("as nobody: exit %d, %q", r.code, r.stderr)
			}
		})

		t.Run("install and boot", func(t *testing.T) {
			defer cleanup(t)
			storeDir := t.TempDir()
			mustGraft(t, "install", "--store", storeDir, fix+"livepatch-sample.ko")
			mustGraft(t, "install", "--store", storeDir, fix+"test_klp_livepatch.ko")
			r := mustGraft(t, "boot", "--store", storeDir, "--json")
			var res struct{ Applied []string }
			json.Unmarshal([]byte(r.stdout), &res)
			if strings.Join(res.Applied, ",") != "livepatch_sample,test_klp_livepatch" {
				t.Errorf("boot applied %v, want the installed order", res.Applied)
			}
			if got := readFile(t, "/proc/cmdline"); got != "test_klp_livepatch: this has been live patched\n" {
				t.Errorf("/proc/cmdline = %q", got)
			}
			if r := mustGraft(t, "boot", "--store", storeDir); !strings.Contains(r.stdout, "already loaded [livepatch_sample test_klp_livepatch]") {
				t.Errorf("second boot: %q", r.stdout)
			}
			mustGraft(t, "revert", "--all", "-q")

			// A tampered file is refused; the other patch still goes in.
			rel := strings.TrimSpace(readFile(t, "/proc/sys/kernel/osrelease"))
			os.WriteFile(filepath.Join(storeDir, rel, "livepatch_sample.ko"), []byte("tampered"), 0o644)
			r = graft(t, "boot", "--store", storeDir)
			if r.code != 6 || !strings.Contains(r.stderr, "sha256") {
				t.Errorf("boot with a tampered file: exit %d, %q", r.code, r.stderr)
			}
			if !loaded(t, "test_klp_livepatch") || loaded(t, "livepatch_sample") {
				t.Error("boot should apply the intact patch and refuse the tampered one")
			}
			mustGraft(t, "uninstall", "--store", storeDir, "livepatch_sample")
			if r := graft(t, "uninstall", "--store", storeDir, "livepatch_sample"); r.code != 3 {
				t.Errorf("uninstalling twice: exit %d", r.code)
			}
			list := strings.Split(strings.TrimSpace(mustGraft(t, "install", "--list", "--store", storeDir).stdout), "\n")
			if len(list) != 2 || !strings.HasPrefix(strings.Join(strings.Fields(list[1]), " "), "1 test_klp_livepatch ") {
				t.Errorf("install --list after uninstall: want only test_klp_livepatch as #1:\n%s", strings.Join(list, "\n"))
			}
		})
	}, vmtest.WithFiles(fixtureFiles), vmtest.WithTimeout(10*time.Minute))
}

// TestBootDisabledAndSignatures boots with graft.enable=0 and
// module.sig_enforce=1: boot does nothing, and unsigned modules are refused
// with a message about signatures.
func TestBootDisabledAndSignatures(t *testing.T) {
	vmtest.Run(t, func(t *testing.T) {
		storeDir := t.TempDir()
		mustGraft(t, "install", "--store", storeDir, fix+"livepatch-sample.ko")
		if r := mustGraft(t, "boot", "--store", storeDir); !strings.Contains(r.stdout, "graft.enable=0") {
			t.Errorf("boot with graft.enable=0: %q", r.stdout)
		}
		if loaded(t, "livepatch_sample") {
			t.Error("boot applied a patch despite graft.enable=0")
		}
		r := graft(t, "apply", fix+"livepatch-sample.ko")
		if r.code != 6 || !strings.Contains(r.stderr, "signature") {
			t.Errorf("unsigned module under sig_enforce: exit %d, %q", r.code, r.stderr)
		}
		if loaded(t, "livepatch_sample") {
			t.Error("the refused module is loaded")
		}
	}, vmtest.WithFiles(fixtureFiles), vmtest.WithAppend("graft.enable=0 module.sig_enforce=1"))
}
