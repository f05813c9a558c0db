package build

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/graft-live/graft/objdiff"
)

// neverReturn are functions that tasks of every running kernel sit in for
// good: a transition waits for each task to leave the patched functions,
// so replacing one of these never finishes.
var neverReturn = map[string]bool{
	"schedule": true, "__schedule": true, "do_idle": true, "cpu_startup_entry": true, "cpu_idle_poll": true,
	"default_idle": true, "default_idle_call": true, "kthread": true, "worker_thread": true, "rescuer_thread": true,
	"smpboot_thread_fn": true, "do_exit": true, "make_task_dead": true, "rest_init": true, "kernel_init": true,
	"kthreadd": true, "start_kernel": true, "arch_cpu_idle": true, "ret_from_fork": true,
}

// kthreadStarters create kernel threads; a function whose address they get
// is a thread's main function.
var kthreadStarters = []string{"kthread_create_on_node", "kthread_create_on_cpu", "kthread_create_worker", "__kthread_create_on_node", "kthread_run"}

// checkUnit raises the findings about the unit's changed functions and data
// that need both objects: prototypes, functions that never return, static
// locals that lose their state, new data in sections with a meaning.
func (b *builder) checkUnit(u *unit) {
	b.checkPrototypes(u)
	b.checkNeverReturns(u)
	for _, c := range u.diff.Changes {
		switch {
		case c.Kind == objdiff.Object && c.Status == objdiff.Removed && strings.Contains(c.Name, "::"):
			fn, local, _ := strings.Cut(c.Name, "::")
			if u.carries(fn) && holdsState(u, c) {
				b.unitFinding(u, fn, Finding{ID: "static-local-dropped", Severity: SeverityWarning, Where: u.spec.Path + ": " + fn,
					Message:    fmt.Sprintf("%s no longer uses its static variable %s: the new %s starts without the state the old one kept", fn, local, fn),
					Suggestion: "keep the static variable, or carry its value over in a pre-patch callback"})
			}
		case c.Kind == objdiff.Object && c.Status == objdiff.New:
			b.checkNewData(u, c)
		}
	}
}

// holdsState reports whether a removed static local could hold state:
// writable data, other than a dynamic debug descriptor (its flags are set
// from debugfs for the call site, which the new code has its own of).
func holdsState(u *unit, c objdiff.Change) bool {
	for _, name := range c.Symbols {
		if s := u.og.sym(name); s != nil && s.Section != nil && s.Section.Flags&elf.SHF_WRITE != 0 && !inSection(s, "__dyndbg") {
			return true
		}
	}
	return false
}

// checkPrototypes refuses a global function whose prototype changed: its
// callers in other files, which the patch does not replace, pass the old
// arguments.
func (b *builder) checkPrototypes(u *unit) {
	orig := readDebugInfo(u.pair.orig.File)
	for name := range u.redirect {
		was, ok1 := orig.protos[name]
		now, ok2 := u.debug().protos[name]
		if ok1 && ok2 && was != now {
			b.unitFinding(u, name, Finding{ID: "prototype-changed", Severity: SeverityError, Where: u.spec.Path + ": " + name,
				Message:    fmt.Sprintf("the prototype of the global function %s changed from %s to %s; its callers in other files, which stay as they are, pass the old arguments", name, was, now),
				Suggestion: "keep the prototype and add a new function with the new one, or patch every caller"})
		}
	}
}

// checkNeverReturns refuses replacing functions that tasks never leave.
func (b *builder) checkNeverReturns(u *unit) {
	for name := range u.redirect {
		why := ""
		switch {
		case u.debug().noreturn[name]:
			why = "it never returns (__noreturn)"
		case neverReturn[name]:
			why = "tasks sit in it for good (the scheduler, idle, kernel threads' loops)"
		case b.isKthreadMain(u, name):
			why = "it is the main function of a kernel thread, which stays in it"
		default:
			continue
		}
		msg := fmt.Sprintf("%s cannot be replaced: %s, so the transition waits for ever", name, why)
		if tasks := b.tasksIn(name); len(tasks) > 0 {
			msg += "; in it now: " + strings.Join(tasks, ", ")
		}
		b.unitFinding(u, name, Finding{ID: "never-returns", Severity: SeverityError, Where: u.spec.Path + ": " + name, Message: msg,
			Suggestion: "move the change into a function it calls, which tasks do leave"})
	}
}

// isKthreadMain reports whether the address of fn goes to a function that
// creates kernel threads.
func (b *builder) isKthreadMain(u *unit, fn string) bool {
	sym := u.pg.sym(fn)
	if sym == nil {
		return false
	}
	for _, use := range u.pg.uses[sym] {
		if use.call || use.from.Type != elf.STT_FUNC {
			continue
		}
		if passesThreadFn(u.patched, use.from, sym, kthreadStarters) {
			return true
		}
	}
	return false
}

// tasksIn names the tasks of the running kernel whose stack holds fn, when
// the target is the running kernel (and graft may read the stacks).
func (b *builder) tasksIn(fn string) []string {
	if !b.target.Running {
		return nil
	}
	stacks, _ := filepath.Glob("/proc/[0-9]*/task/[0-9]*/stack")
	var out []string
	for _, p := range stacks {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			// "[<0>] schedule+0x45/0xb0"
			f := strings.Fields(sc.Text())
			if len(f) == 2 && strings.HasPrefix(f[1], fn+"+") {
				tid := filepath.Base(filepath.Dir(p))
				comm, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "comm"))
				out = append(out, fmt.Sprintf("%s (%s)", tid, strings.TrimSpace(string(comm))))
				break
			}
		}
		if len(out) >= 10 {
			out = append(out, "...")
			break
		}
	}
	return out
}

// checkNewData raises findings for new data in sections whose meaning a
// livepatch module cannot give it.
func (b *builder) checkNewData(u *unit, c objdiff.Change) {
	for _, name := range c.Symbols {
		sym := u.pg.sym(name)
		if sym == nil || sym.Section == nil {
			continue
		}
		switch sec := sym.Section.Name; {
		case strings.HasPrefix(sec, ".data..ro_after_init"):
			b.unitFinding(u, name, Finding{ID: "new-data-section", Severity: SeverityError, Where: u.spec.Path + ": " + c.Name,
				Message:    fmt.Sprintf("new __ro_after_init data %s: boot code initialized the kernel's data of this kind, and no boot code runs for the livepatch's copy", name),
				Suggestion: "initialize it in a pre-patch callback, as ordinary data"})
		case strings.HasPrefix(sec, "__tracepoints"):
			b.unitFinding(u, name, Finding{ID: "new-data-section", Severity: SeverityError, Where: u.spec.Path + ": " + c.Name,
				Message:    fmt.Sprintf("new tracepoint %s: a livepatch module does not register tracepoints it defines", name),
				Suggestion: "use an existing tracepoint, or none"})
		case strings.HasPrefix(sec, ".data..percpu"):
			b.unitFinding(u, name, Finding{ID: "new-data-section", Severity: SeverityWarning, Where: u.spec.Path + ": " + c.Name,
				Message: fmt.Sprintf("new per-CPU variable %s: the livepatch module allocates it when it loads, initialized as declared", name)})
		}
	}
}

// headerSummary reports, for changed headers, how many objects they made
// graft compile and which functions changed because of them.
func (b *builder) headerSummary(units []*unit) {
	if len(b.headers) == 0 {
		return
	}
	var funcs []string
	for _, u := range units {
		if !u.spec.Header {
			continue
		}
		for name := range u.redirect {
			funcs = append(funcs, u.object+":"+name)
		}
	}
	sort.Strings(funcs)
	msg := fmt.Sprintf("%d object(s) include the changed header(s); %d function(s) changed because of them", b.rep.HeaderObjects, len(funcs))
	if len(funcs) > 0 {
		msg += ": " + strings.Join(funcs, ", ")
	}
	b.rep.finding(Finding{ID: "header-change", Severity: SeverityWarning, Where: strings.Join(b.headers, ", "), Message: msg,
		Suggestion: "check that data the header describes keeps its layout in the running kernel"})
}

// carries reports whether the unit carries a piece of the function fn
// (fn itself or a clone of it).
func (u *unit) carries(fn string) bool {
	for name := range u.carry {
		if baseName(name) == fn {
			return true
		}
	}
	return false
}
