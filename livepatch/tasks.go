package livepatch

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Patch states of a task, /proc/PID/task/TID/patch_state.
const (
	StateNone      = -1 // no transition in progress
	StateUnpatched = 0
	StatePatched   = 1
)

// Task is a thread of the running system.
type Task struct {
	PID  int    `json:"pid"`
	TID  int    `json:"tid"`
	Comm string `json:"comm"`
	// State is the task's patch_state.
	State int `json:"patch_state"`
	// Stack is the kernel stack, function names only (when read).
	Stack []string `json:"stack,omitempty"`
	// Blocking lists the patched functions on its stack that keep it from
	// switching.
	Blocking []string `json:"blocking,omitempty"`
}

// Describe says which task it is and what holds it.
func (t Task) Describe() string {
	s := fmt.Sprintf("pid %d", t.PID)
	if t.TID != t.PID {
		s += fmt.Sprintf(" tid %d", t.TID)
	}
	s += fmt.Sprintf(" (%s)", t.Comm)
	switch {
	case len(t.Blocking) > 0:
		s += " is in " + strings.Join(t.Blocking, ", ")
	case len(t.Stack) > 0:
		s += " stack: " + strings.Join(t.Stack, " < ")
	}
	return s
}

// Tasks lists every thread with its patch state. Threads that exit while
// being read are skipped.
func (s *System) Tasks() ([]Task, error) {
	pids, err := os.ReadDir(s.Proc)
	if err != nil {
		return nil, err
	}
	var tasks []Task
	for _, p := range pids {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		tids, err := os.ReadDir(filepath.Join(s.Proc, p.Name(), "task"))
		if err != nil {
			continue
		}
		for _, t := range tids {
			tid, err := strconv.Atoi(t.Name())
			if err != nil {
				continue
			}
			dir := filepath.Join(s.Proc, p.Name(), "task", t.Name())
			b, err := os.ReadFile(filepath.Join(dir, "patch_state"))
			if err != nil {
				continue
			}
			state, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				continue
			}
			comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
			tasks = append(tasks, Task{PID: pid, TID: tid, Comm: strings.TrimSpace(string(comm)), State: state})
		}
	}
	return tasks, nil
}

// stackLine matches "[<0>] busymod_work_func+0x25/0x60 [test_klp_callbacks_busy]".
var stackLine = regexp.MustCompile(`^\[<[0-9a-fx]+>\]\s+([^+\s]+)\+`)

// ReadStack fills t.Stack from /proc/PID/task/TID/stack and t.Blocking with
// the functions of funcs found there (names compared without compiler
// suffixes such as .isra.0).
func (s *System) ReadStack(t *Task, funcs map[string]bool) {
	b, err := os.ReadFile(filepath.Join(s.Proc, strconv.Itoa(t.PID), "task", strconv.Itoa(t.TID), "stack"))
	if err != nil {
		return
	}
	t.Stack, t.Blocking = parseStack(string(b), funcs)
}

func parseStack(text string, funcs map[string]bool) (stack, blocking []string) {
	for _, line := range strings.Split(text, "\n") {
		m := stackLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		stack = append(stack, m[1])
		base, _, _ := strings.Cut(m[1], ".")
		if funcs[m[1]] || funcs[base] {
			blocking = append(blocking, m[1])
		}
	}
	return stack, blocking
}

// Progress is the state of a transition.
type Progress struct {
	Patch string `json:"patch"`
	// Target is "patched" or "unpatched".
	Target string `json:"target"`
	// Done counts tasks already in the target state, of Total.
	Done  int `json:"done"`
	Total int `json:"total"`
	// Pending are the tasks not yet switched.
	Pending []Task `json:"pending,omitempty"`
}

// TransitionProgress counts the tasks switched so far towards target.
func (s *System) TransitionProgress(patch string, target int) (Progress, error) {
	tasks, err := s.Tasks()
	if err != nil {
		return Progress{}, err
	}
	pr := Progress{Patch: patch, Target: stateName(target)}
	for _, t := range tasks {
		if t.State == StateNone {
			continue
		}
		pr.Total++
		if t.State == target {
			pr.Done++
		} else {
			pr.Pending = append(pr.Pending, t)
		}
	}
	return pr, nil
}

func stateName(state int) string {
	if state == StatePatched {
		return "patched"
	}
	return "unpatched"
}

// functionSet is the set of function names a patch touches.
func functionSet(p *Patch) map[string]bool {
	set := map[string]bool{}
	for _, o := range p.Objects {
		for _, f := range o.Functions {
			set[f.Name] = true
		}
	}
	return set
}
