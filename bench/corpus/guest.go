package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// complaintMarkers start the kernel's reports that make a module an oops.
var complaintMarkers = []string{"BUG:", "Oops:", "general protection fault", "kernel BUG at", "WARNING:", "Call Trace:", "watchdog: BUG: soft lockup", "INFO: task"}

// runGuest tries, inside the VM, each module of the list: load the kernel
// modules it patches, graft apply, a smoke workload, graft revert, and the
// kernel log since the start of the module. It prints a start line before
// and a verdict line after each one on stdout.
func runGuest(listFile string) error {
	b, err := os.ReadFile(listFile)
	if err != nil {
		return err
	}
	var entries []entry
	if err := json.Unmarshal(b, &entries); err != nil {
		return err
	}
	for _, e := range entries {
		fmt.Println(markStart + e.Name)
		for _, m := range e.Load {
			// A driver without its device may refuse to load; the patch
			// applies all the same (the livepatch core patches the module
			// when it comes).
			exec.Command("insmod", m).Run()
		}
		// What loading the patched modules logs (their own complaints,
		// crypto self-tests that run after them) is not the patch's: wait
		// for the log to settle, then clear it, so that what it holds
		// afterwards is this patch's.
		settle(len(e.Load) > 0)
		exec.Command("dmesg", "-c").Run()
		v := verdict{Name: e.Name}
		if out, err := exec.Command("graft", "apply", "-q", "--timeout", "60s", e.Module).CombinedOutput(); err != nil {
			v.Failure = fmt.Sprintf("graft apply: %v: %s", err, oneLine(out))
		} else {
			smoke()
			if out, err := exec.Command("graft", "revert", "-q", e.Name).CombinedOutput(); err != nil {
				v.Failure = fmt.Sprintf("graft revert: %v: %s", err, oneLine(out))
			}
		}
		log, _ := exec.Command("dmesg").Output()
		v.Complaint = complaint(log)
		line, err := json.Marshal(v)
		if err != nil {
			return err
		}
		fmt.Println(markVerdict + string(line))
	}
	return nil
}

// settle waits, when loaded, until the kernel log has not grown for a
// second (at most 10 s).
func settle(loaded bool) {
	if !loaded {
		return
	}
	last, stable := -1, 0
	for i := 0; i < 20 && stable < 2; i++ {
		out, _ := exec.Command("dmesg").Output()
		if len(out) == last {
			stable++
		} else {
			last, stable = len(out), 0
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// complaint returns the kernel log from its first report of a problem on,
// a few lines of it, or "".
func complaint(log []byte) string {
	lines := strings.Split(string(log), "\n")
	for i, l := range lines {
		for _, m := range complaintMarkers {
			if strings.Contains(l, m) {
				return strings.Join(lines[i:min(len(lines), i+8)], " | ")
			}
		}
	}
	return ""
}

// smoke is the short workload run while a patch is applied: every file
// under /proc/sys and /proc/self read, /sys/kernel/livepatch listed, a few
// processes started.
func smoke() {
	readAll := func(root string, skip map[string]bool) {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			if d.IsDir() {
				if p != root && skip[d.Name()] {
					return filepath.SkipDir
				}
				return nil
			}
			if skip[d.Name()] || !d.Type().IsRegular() {
				return nil
			}
			if f, err := os.Open(p); err == nil {
				io.Copy(io.Discard, io.LimitReader(f, 1<<20))
				f.Close()
			}
			return nil
		})
	}
	readAll("/proc/sys", nil)
	// /proc/self/task repeats it; mem and pagemap are address-space sized.
	readAll("/proc/self", map[string]bool{"task": true, "mem": true, "pagemap": true, "fd": true, "fdinfo": true, "map_files": true, "net": true})
	readAll("/sys/kernel/livepatch", nil)
	for i := 0; i < 5; i++ {
		exec.Command("sh", "-c", "echo $$ | cat > /dev/null").Run()
		exec.Command("ls", "/proc").Run()
	}
}

func oneLine(b []byte) string {
	s := strings.Join(strings.Fields(string(bytes.TrimSpace(b))), " ")
	if len(s) > 400 {
		s = s[:400] + "..."
	}
	return s
}
