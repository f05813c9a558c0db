package livepatch

import (
	"fmt"
	"io"
	"strings"
)

// Overall states of the livepatch system.
const (
	StateReady      = "ready"       // no transition in progress
	StateInProgress = "in_progress" // a transition is converging
	StateStalled    = "stalled"     // a transition waits for tasks sitting in patched functions
)

// Status is everything graft status reports. Its JSON form is stable.
type Status struct {
	// Kernel is the running release.
	Kernel string `json:"kernel"`
	// State is ready, in_progress or stalled.
	State string `json:"state"`
	// Tainted is the kernel's livepatch taint flag (K).
	Tainted bool `json:"tainted_livepatch"`
	// Patches are newest first.
	Patches []PatchStatus `json:"patches"`
	// Pending are the tasks a transition still waits for.
	Pending []Task `json:"pending_tasks"`
	// Replaced are livepatch modules still loaded whose patch a cumulative
	// (replace) patch superseded; they do nothing until unloaded.
	Replaced []string `json:"replaced_modules"`
}

// PatchStatus is one patch with its transition.
type PatchStatus struct {
	Patch
	// Progress is set while the patch is in transition.
	Progress *Progress `json:"progress,omitempty"`
}

// ReadStatus reads the state of every livepatch. Function owners follow the
// kernel's rule: the newest enabled patch that has a function runs it.
func (s *System) ReadStatus() (*Status, error) {
	if err := s.Supported(); err != nil {
		return nil, err
	}
	release, err := s.Release()
	if err != nil {
		return nil, err
	}
	ps, err := s.Patches()
	if err != nil {
		return nil, err
	}
	st := &Status{Kernel: release, State: StateReady, Tainted: s.Tainted(), Patches: []PatchStatus{}, Pending: []Task{}, Replaced: []string{}}
	byName := map[string]Patch{}
	for _, p := range ps {
		byName[p.Name] = p
	}
	mods, err := s.LivepatchModules()
	if err != nil {
		return nil, err
	}
	for _, m := range mods {
		if _, ok := byName[m]; !ok {
			st.Replaced = append(st.Replaced, m)
		}
	}
	newest := s.Newest(ps)
	owner := map[string]string{} // object/function,sympos -> patch
	for _, name := range newest {
		p := byName[name]
		if !p.Enabled {
			continue
		}
		for _, o := range p.Objects {
			for _, f := range o.Functions {
				key := fmt.Sprintf("%s/%s,%d", o.Name, f.Name, f.Sympos)
				if _, taken := owner[key]; !taken {
					owner[key] = p.Name
				}
			}
		}
	}
	for _, name := range newest {
		p := byName[name]
		for i := range p.Objects {
			o := &p.Objects[i]
			for j := range o.Functions {
				f := &o.Functions[j]
				f.Owner = owner[fmt.Sprintf("%s/%s,%d", o.Name, f.Name, f.Sympos)]
			}
		}
		ps := PatchStatus{Patch: p}
		if p.Transition {
			target := StateUnpatched
			if p.Enabled {
				target = StatePatched
			}
			pr, err := s.TransitionProgress(p.Name, target)
			if err != nil {
				return nil, err
			}
			funcs := functionSet(&p)
			stalled := false
			for i := range pr.Pending {
				s.ReadStack(&pr.Pending[i], funcs)
				stalled = stalled || len(pr.Pending[i].Blocking) > 0
			}
			st.Pending = append(st.Pending, pr.Pending...)
			pr.Pending = nil
			ps.Progress = &pr
			if stalled {
				st.State = StateStalled
			} else if st.State == StateReady {
				st.State = StateInProgress
			}
		}
		st.Patches = append(st.Patches, ps)
	}
	return st, nil
}

// WriteText writes the status for humans.
func (st *Status) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "kernel %s: %s", st.Kernel, st.State)
	if st.Tainted {
		fmt.Fprint(w, " (tainted K: livepatched)")
	}
	fmt.Fprintln(w)
	if len(st.Patches) == 0 {
		fmt.Fprintln(w, "no livepatches loaded")
	}
	for _, p := range st.Patches {
		state := "disabled"
		if p.Enabled {
			state = "enabled"
		}
		if p.Progress != nil {
			state += fmt.Sprintf(", in transition to %s: %d/%d tasks", p.Progress.Target, p.Progress.Done, p.Progress.Total)
		}
		if p.Replace != nil && *p.Replace {
			state += ", replace"
		}
		fmt.Fprintf(w, "\n%s: %s\n", p.Name, state)
		for _, o := range p.Objects {
			obj := o.Name
			if o.Patched != nil && !*o.Patched {
				obj += " (not patched: not loaded)"
			}
			fmt.Fprintf(w, "  %s\n", obj)
			for _, f := range o.Functions {
				who := ""
				switch {
				case f.Owner == "":
					who = "  (inactive)"
				case f.Owner != p.Name:
					who = "  (overridden by " + f.Owner + ")"
				}
				fmt.Fprintf(w, "    %s,%d%s\n", f.Name, f.Sympos, who)
			}
		}
	}
	if len(st.Replaced) > 0 {
		fmt.Fprintf(w, "\nreplaced by a cumulative patch, still loaded (graft revert NAME unloads): %s\n", strings.Join(st.Replaced, ", "))
	}
	if len(st.Pending) > 0 {
		fmt.Fprintf(w, "\ntasks not yet switched: %d\n", len(st.Pending))
		for _, t := range st.Pending {
			fmt.Fprintf(w, "  %s\n", t.Describe())
		}
	}
	return nil
}

// WritePrometheus writes the node_exporter textfile-collector format.
func (st *Status) WritePrometheus(w io.Writer) error {
	b := &strings.Builder{}
	metric := func(name, help string) {
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name)
	}
	metric("graft_livepatch_state", "Overall livepatch state (1 for the current one).")
	for _, s := range []string{StateReady, StateInProgress, StateStalled} {
		fmt.Fprintf(b, "graft_livepatch_state{state=%q} %d\n", s, boolInt(st.State == s))
	}
	metric("graft_livepatch_tainted", "Kernel taint flag K (livepatch loaded).")
	fmt.Fprintf(b, "graft_livepatch_tainted %d\n", boolInt(st.Tainted))
	metric("graft_livepatch_pending_tasks", "Tasks a transition still waits for.")
	fmt.Fprintf(b, "graft_livepatch_pending_tasks %d\n", len(st.Pending))
	metric("graft_livepatch_enabled", "Whether the patch is enabled.")
	for _, p := range st.Patches {
		fmt.Fprintf(b, "graft_livepatch_enabled{patch=%q} %d\n", p.Name, boolInt(p.Enabled))
	}
	metric("graft_livepatch_transition", "Whether the patch is in transition.")
	for _, p := range st.Patches {
		fmt.Fprintf(b, "graft_livepatch_transition{patch=%q} %d\n", p.Name, boolInt(p.Transition))
	}
	metric("graft_livepatch_functions", "Functions the patch replaces, and how many of them it currently owns.")
	for _, p := range st.Patches {
		total, owned := 0, 0
		for _, o := range p.Objects {
			for _, f := range o.Functions {
				total++
				if f.Owner == p.Name {
					owned++
				}
			}
		}
		fmt.Fprintf(b, "graft_livepatch_functions{patch=%q,owned=\"false\"} %d\n", p.Name, total-owned)
		fmt.Fprintf(b, "graft_livepatch_functions{patch=%q,owned=\"true\"} %d\n", p.Name, owned)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Owners maps "object/function,sympos" to the patch that runs it.
func (st *Status) Owners() map[string]string {
	m := map[string]string{}
	for _, p := range st.Patches {
		for _, o := range p.Objects {
			for _, f := range o.Functions {
				if f.Owner != "" {
					m[fmt.Sprintf("%s/%s,%d", o.Name, f.Name, f.Sympos)] = f.Owner
				}
			}
		}
	}
	return m
}
