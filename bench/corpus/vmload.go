package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/graft-live/graft/kernel"
	"github.com/graft-live/graft/vm"
)

// guestDir holds the modules and the list in the guest.
const guestDir = "/corpus"

// entry is one module to try in the guest.
type entry struct {
	File   string `json:"file"`
	Name   string `json:"name"`
	Module string `json:"module"`
	// Load are the guest paths of the kernel modules the patch changes,
	// with their dependencies, in load order.
	Load []string `json:"load,omitempty"`
}

// verdict is what the guest says of one entry.
type verdict struct {
	Name string `json:"name"`
	// Failure says what failed: the apply or the revert, with graft's
	// message ("" when both worked).
	Failure string `json:"failure,omitempty"`
	// Complaint is the first lines of the kernel's report of an oops, BUG
	// or warning.
	Complaint string `json:"complaint,omitempty"`
}

// Markers of the guest's lines on stdout.
const (
	markStart   = "@@corpus-start "
	markVerdict = "@@corpus-verdict "
)

// loadAll tries every built module that was not loaded yet, c.batch per
// boot. A boot that dies (a kernel panic, a hang) marks the module it was
// trying as an oops; the modules after it go into the next boot.
func loadAll(ctx context.Context, c config, target *kernel.Target, files []string, store *results) error {
	var todo []result
	for _, f := range files {
		if r, ok := store.get(f); ok && r.Outcome == outBuilt {
			if _, err := os.Stat(r.Module); err == nil {
				todo = append(todo, r)
			}
		}
	}
	if len(todo) == 0 {
		return nil
	}
	logf("loading %d modules in VMs of %s, %d per boot", len(todo), target, c.batch)
	vt, err := vm.PrepareTarget(ctx, target.Release+"="+target.Version, nil)
	if err != nil {
		return err
	}
	graft, err := buildGuestGraft(ctx, c.work)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	for len(todo) > 0 {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		n := min(c.batch, len(todo))
		done, err := boot(ctx, vt, graft, self, todo[:n], store)
		if err != nil {
			return err
		}
		todo = todo[done:]
	}
	return nil
}

// boot tries the modules in one VM and records a result for each it
// finished; it returns how many that was (at least one: a module the VM
// died with is an oops).
func boot(ctx context.Context, vt *vm.Target, graft, self string, batch []result, store *results) (int, error) {
	files := []vm.File{{Host: self, Guest: guestDir + "/corpus", Mode: 0o755}}
	var entries []entry
	loaded := map[string]bool{}
	for _, r := range batch {
		e := entry{File: r.File, Name: moduleName(r.File), Module: guestDir + "/" + filepath.Base(r.Module)}
		files = append(files, vm.File{Host: r.Module, Guest: e.Module})
		var mods []string
		for _, o := range r.Objects {
			if o != "vmlinux" {
				mods = append(mods, o)
			}
		}
		if len(mods) > 0 {
			mf, order, err := vm.Modules(vt.Kernel.ModulesDir, mods)
			if err == nil {
				e.Load = order
				for _, f := range mf {
					if !loaded[f.Guest] {
						loaded[f.Guest] = true
						files = append(files, f)
					}
				}
			}
		}
		entries = append(entries, e)
	}
	list, err := json.Marshal(entries)
	if err != nil {
		return 0, err
	}
	tmp, err := os.MkdirTemp("", "graft-corpus-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	listFile := filepath.Join(tmp, "list.json")
	if err := os.WriteFile(listFile, list, 0o644); err != nil {
		return 0, err
	}
	files = append(files, vm.File{Host: listFile, Guest: guestDir + "/list.json"})

	var mu sync.Mutex
	var inFlight string
	finished := 0
	var putErr error
	byName := map[string]result{}
	for _, r := range batch {
		byName[moduleName(r.File)] = r
	}
	out := &vm.LineWriter{Line: func(line string) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case strings.HasPrefix(line, markStart):
			inFlight = strings.TrimPrefix(line, markStart)
		case strings.HasPrefix(line, markVerdict):
			var v verdict
			if json.Unmarshal([]byte(strings.TrimPrefix(line, markVerdict)), &v) != nil {
				return
			}
			r, ok := byName[v.Name]
			if !ok {
				return
			}
			switch {
			case v.Complaint != "":
				r.Outcome, r.Error = outOops, v.Complaint
			case v.Failure != "":
				r.Outcome, r.Error = outLoadFailure, v.Failure
			default:
				r.Outcome = outLoaded
			}
			logf("%s: %s %s", r.File, r.Outcome, firstLine(r.Error))
			if err := store.put(r); err != nil && putErr == nil {
				putErr = err
			}
			finished++
			inFlight = ""
		}
	}}
	code, err := vm.Exec(ctx, vm.Config{
		Image:   vt.Image,
		Argv:    []string{guestDir + "/corpus", "-guest", guestDir + "/list.json"},
		Stdout:  out,
		Stderr:  io.Discard,
		Timeout: 2*time.Minute + time.Duration(len(batch))*90*time.Second,
		Initramfs: vm.Initramfs{
			Init:    graft,
			Busybox: vt.Busybox,
			Files:   files,
		},
	})
	out.Flush()
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	mu.Lock()
	defer mu.Unlock()
	if putErr != nil {
		return 0, putErr
	}
	if err == nil && code == 0 && finished == len(batch) {
		return finished, nil
	}
	// The VM died, hung, or the guest program failed: the module it was
	// trying is to blame (or, when it had none in flight, the next one).
	why := fmt.Sprintf("the VM ended (exit status %d, %v) while this module was tried", code, err)
	var ge *vm.GuestError
	if errors.As(err, &ge) && len(ge.Console) > 0 {
		why += ": " + strings.Join(ge.Console[:min(len(ge.Console), 12)], " | ")
	}
	blame := inFlight
	if blame == "" && finished < len(batch) {
		blame = moduleName(batch[finished].File)
	}
	if r, ok := byName[blame]; ok {
		r.Outcome, r.Error = outOops, why
		logf("%s: %s %s", r.File, r.Outcome, why)
		if err := store.put(r); err != nil {
			return 0, err
		}
		finished++
	}
	return finished, nil
}

// buildGuestGraft builds graft as the guest's init: static, from this
// source tree.
func buildGuestGraft(ctx context.Context, work string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(work, "graft-guest")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/graft")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build graft for the guest: %v\n%s", err, b)
	}
	return out, nil
}
