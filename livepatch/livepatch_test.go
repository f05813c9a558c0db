package livepatch

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// fakeSystem builds a sysfs and proc tree as the kernel lays them out.
type fakeSystem struct {
	t    *testing.T
	sys  *System
	root string
}

func newFake(t *testing.T) *fakeSystem {
	t.Helper()
	root := t.TempDir()
	s := &System{Sysfs: filepath.Join(root, "sys", "kernel", "livepatch"), Proc: filepath.Join(root, "proc")}
	f := &fakeSystem{t: t, sys: s, root: root}
	f.write("sys/kernel/livepatch/.keep", "")
	f.write("proc/sys/kernel/osrelease", "6.1.0-56-amd64\n")
	f.write("proc/sys/kernel/tainted", "32768\n")
	return f
}

func (f *fakeSystem) write(rel, content string) {
	f.t.Helper()
	p := filepath.Join(f.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

// patch adds a patch with functions given as "object/function,sympos".
func (f *fakeSystem) patch(name string, enabled, transition bool, funcs ...string) {
	b := map[bool]string{true: "1\n", false: "0\n"}
	f.write("sys/kernel/livepatch/"+name+"/enabled", b[enabled])
	f.write("sys/kernel/livepatch/"+name+"/transition", b[transition])
	for _, fn := range funcs {
		obj, _, _ := strings.Cut(fn, "/")
		f.write("sys/kernel/livepatch/"+name+"/"+obj+"/patched", "1\n")
		f.write("sys/kernel/livepatch/"+name+"/"+fn+"/.keep", "")
	}
}

func (f *fakeSystem) task(pid, tid int, comm string, state int, stack string) {
	dir := "proc/" + itoa(pid) + "/task/" + itoa(tid) + "/"
	f.write(dir+"patch_state", itoa(state)+"\n")
	f.write(dir+"comm", comm+"\n")
	f.write(dir+"stack", stack)
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestStatusOwnershipAndOrder(t *testing.T) {
	f := newFake(t)
	f.patch("fix_a", true, false, "vmlinux/cmdline_proc_show,1", "vmlinux/meminfo_proc_show,1")
	f.patch("fix_b", true, false, "vmlinux/cmdline_proc_show,1", "ext4/ext4_fill_super,2")
	f.patch("fix_off", false, false, "vmlinux/meminfo_proc_show,1")
	// /proc/modules lists the newest module first; "old_fix" was replaced.
	f.write("proc/modules", "fix_b 16384 0 - Live 0x0 (K)\nfix_off 16384 0 - Live 0x0 (K)\nfix_a 16384 0 - Live 0x0 (K)\nold_fix 16384 0 - Live 0x0 (K)\next4 1 0 - Live 0x0\n")
	st, err := f.sys.ReadStatus()
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, p := range st.Patches {
		order = append(order, p.Name)
	}
	if want := []string{"fix_b", "fix_off", "fix_a"}; !reflect.DeepEqual(order, want) {
		t.Errorf("order = %v, want newest first %v", order, want)
	}
	want := map[string]string{
		"vmlinux/cmdline_proc_show,1": "fix_b",
		"vmlinux/meminfo_proc_show,1": "fix_a", // fix_off is newer but disabled
		"ext4/ext4_fill_super,2":      "fix_b",
	}
	if got := st.Owners(); !reflect.DeepEqual(got, want) {
		t.Errorf("owners = %v, want %v", got, want)
	}
	if st.State != StateReady || !st.Tainted || st.Kernel != "6.1.0-56-amd64" {
		t.Errorf("status = %+v", st)
	}
	if !reflect.DeepEqual(st.Replaced, []string{"old_fix"}) {
		t.Errorf("replaced = %v", st.Replaced)
	}
	var text bytes.Buffer
	st.WriteText(&text)
	if !strings.Contains(text.String(), "cmdline_proc_show,1  (overridden by fix_b)") {
		t.Errorf("text does not show the override:\n%s", text.String())
	}
	order, err = f.sys.RevertOrder()
	if err != nil || !reflect.DeepEqual(order, []string{"fix_b", "fix_off", "fix_a", "old_fix"}) {
		t.Errorf("RevertOrder = %v, %v", order, err)
	}
}

func TestStackOrderWins(t *testing.T) {
	f := newFake(t)
	f.patch("p1", true, false, "vmlinux/f,1")
	f.patch("p2", true, false, "vmlinux/f,1")
	f.write("sys/kernel/livepatch/p1/stack_order", "2\n")
	f.write("sys/kernel/livepatch/p2/stack_order", "1\n")
	f.write("proc/modules", "p2 1 0 - Live 0x0 (K)\np1 1 0 - Live 0x0 (K)\n")
	st, err := f.sys.ReadStatus()
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Owners()["vmlinux/f,1"]; got != "p1" {
		t.Errorf("owner = %q, want p1 (highest stack_order) over module order", got)
	}
}

func TestStalledStatus(t *testing.T) {
	f := newFake(t)
	f.patch("busy_fix", true, true, "test_klp_callbacks_busy/busymod_work_func,1")
	f.write("proc/modules", "busy_fix 1 0 - Live 0x0 (K)\n")
	f.task(1, 1, "init", StatePatched, "[<0>] do_wait+0x1/0x2\n")
	f.task(42, 42, "kworker/0:1", StateUnpatched,
		"[<0>] msleep+0x2d/0x40\n[<0>] busymod_work_func+0x25/0x60 [test_klp_callbacks_busy]\n[<0>] process_one_work+0x1c7/0x380\n")
	f.task(43, 44, "bash", StateNone, "")
	st, err := f.sys.ReadStatus()
	if err != nil {
		t.Fatal(err)
	}
	if st.State != StateStalled {
		t.Fatalf("state = %q, want stalled", st.State)
	}
	p := st.Patches[0].Progress
	if p == nil || p.Done != 1 || p.Total != 2 || p.Target != "patched" {
		t.Errorf("progress = %+v", p)
	}
	if len(st.Pending) != 1 || st.Pending[0].PID != 42 || !reflect.DeepEqual(st.Pending[0].Blocking, []string{"busymod_work_func"}) {
		t.Errorf("pending = %+v", st.Pending)
	}
	var prom bytes.Buffer
	st.WritePrometheus(&prom)
	for _, want := range []string{`graft_livepatch_state{state="stalled"} 1`, `graft_livepatch_transition{patch="busy_fix"} 1`, "graft_livepatch_pending_tasks 1"} {
		if !strings.Contains(prom.String(), want+"\n") {
			t.Errorf("prometheus output lacks %q", want)
		}
	}
}

func TestParseStack(t *testing.T) {
	funcs := map[string]bool{"dummy_free": true, "cmdline_proc_show": true}
	stack, blocking := parseStack("[<0>] dummy_free.isra.0+0x10/0x20 [livepatch_shadow_mod]\n[<0>] cmdline_proc_show+0x1/0x2\nnot a frame\n[<0>] vfs_read+0x9/0x10\n", funcs)
	if want := []string{"dummy_free.isra.0", "cmdline_proc_show", "vfs_read"}; !reflect.DeepEqual(stack, want) {
		t.Errorf("stack = %q", stack)
	}
	if want := []string{"dummy_free.isra.0", "cmdline_proc_show"}; !reflect.DeepEqual(blocking, want) {
		t.Errorf("blocking = %q", blocking)
	}
}

func TestNoLivepatchSupport(t *testing.T) {
	s := &System{Sysfs: filepath.Join(t.TempDir(), "missing"), Proc: t.TempDir()}
	if _, err := s.ReadStatus(); !errors.Is(err, ErrNoLivepatch) {
		t.Errorf("ReadStatus = %v, want ErrNoLivepatch", err)
	}
}

func TestStallErrorText(t *testing.T) {
	e := &StallError{Patch: "p", Target: "patched", Blockers: []Task{{PID: 42, TID: 42, Comm: "kworker/0:1", Blocking: []string{"busymod_work_func"}}}, Reverted: true}
	if !errors.Is(e, ErrStalled) {
		t.Error("StallError does not match ErrStalled")
	}
	msg := e.Error()
	for _, want := range []string{"pid 42 (kworker/0:1) is in busymod_work_func", "reversed"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
}

// TestRemoved tells the errors of reading a patch that the kernel removes
// (ENOENT once gone, ENODEV while going) from other errors.
func TestRemoved(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&fs.PathError{Op: "read", Path: "transition", Err: syscall.ENODEV}, true},
		{&fs.PathError{Op: "open", Path: "transition", Err: syscall.ENOENT}, true},
		{&fs.PathError{Op: "read", Path: "transition", Err: syscall.EIO}, false},
		{nil, false},
	} {
		if got := removed(tc.err); got != tc.want {
			t.Errorf("removed(%v) = %v", tc.err, got)
		}
	}
}
