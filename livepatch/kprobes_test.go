package livepatch

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestParseKprobes(t *testing.T) {
	// Lines as report_probe (kernel/kprobes.c) writes them.
	list := "ffffffff81350e10  k  cmdline_proc_show+0x0    [FTRACE]\n" +
		"ffffffff81350e15  r  cmdline_proc_show+0x5    [DISABLED]\n" +
		"ffffffffc0a01234  k  ext4_sync_fs+0x14  ext4 [OPTIMIZED]\n" +
		"0000000000000000  k  version_proc_show+0x0\n" +
		"garbage\n"
	want := []Kprobe{
		{Function: "cmdline_proc_show", Flags: []string{"FTRACE"}},
		{Function: "cmdline_proc_show", Offset: 5, Return: true, Flags: []string{"DISABLED"}},
		{Function: "ext4_sync_fs", Offset: 0x14, Module: "ext4", Flags: []string{"OPTIMIZED"}},
		{Function: "version_proc_show"},
	}
	if got := parseKprobeList([]byte(list)); !reflect.DeepEqual(got, want) {
		t.Errorf("kprobes/list:\n got %+v\nwant %+v", got, want)
	}
	// Documentation/trace/kprobetrace.rst's syntax.
	events := "p:kprobes/myprobe do_sys_open dfd=%ax\n" +
		"r4:kprobes/myretprobe do_sys_open+16 $retval\n" +
		"p:kprobes/m ext4:ext4_sync_fs+0x14\n" +
		"p:kprobes/raw 0xffffffff81000000\n"
	want = []Kprobe{
		{Function: "do_sys_open"},
		{Function: "do_sys_open", Offset: 16, Return: true},
		{Function: "ext4_sync_fs", Offset: 0x14, Module: "ext4"},
	}
	if got := parseKprobeEvents([]byte(events)); !reflect.DeepEqual(got, want) {
		t.Errorf("kprobe_events:\n got %+v\nwant %+v", got, want)
	}
}

// TestKprobesSources prefers debugfs and falls back to tracefs; without
// either nothing is known.
func TestKprobesSources(t *testing.T) {
	root := t.TempDir()
	s := &System{Debugfs: filepath.Join(root, "debug"), Tracefs: filepath.Join(root, "tracing")}
	if got, err := s.Kprobes(); got != nil || err != nil {
		t.Errorf("no debugfs, no tracefs: %v, %v", got, err)
	}
	os.MkdirAll(s.Tracefs, 0o755)
	os.WriteFile(filepath.Join(s.Tracefs, "kprobe_events"), []byte("p:kprobes/a from_tracefs\n"), 0o644)
	if got, _ := s.Kprobes(); len(got) != 1 || got[0].Function != "from_tracefs" {
		t.Errorf("tracefs: %+v", got)
	}
	os.MkdirAll(filepath.Join(s.Debugfs, "kprobes"), 0o755)
	os.WriteFile(filepath.Join(s.Debugfs, "kprobes", "list"), []byte("ffffffff81350e10  k  from_debugfs+0x0    [FTRACE]\n"), 0o644)
	if got, _ := s.Kprobes(); len(got) != 1 || got[0].Function != "from_debugfs" {
		t.Errorf("debugfs: %+v", got)
	}
}
