package livepatch

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/graft-live/graft/kmod"
)

// Kprobe is a kprobe registered in the running kernel.
type Kprobe struct {
	// Function is the probed symbol and Offset the probe's offset in it.
	Function string `json:"function"`
	Offset   uint64 `json:"offset"`
	// Module is the module the function is in; "" for vmlinux.
	Module string `json:"module,omitempty"`
	// Return says it is a kretprobe.
	Return bool `json:"return,omitempty"`
	// Flags are the kernel's flags for it: GONE, DISABLED, OPTIMIZED,
	// FTRACE.
	Flags []string `json:"flags,omitempty"`
}

func (k Kprobe) String() string {
	kind := "kprobe"
	if k.Return {
		kind = "kretprobe"
	}
	s := fmt.Sprintf("%s on %s+0x%x", kind, k.Function, k.Offset)
	if k.Module != "" {
		s += " [" + k.Module + "]"
	}
	return s
}

// What says what happens to the probe once a livepatch replaces its
// function. A probe inside the old body stops firing: no task runs that
// body any more. One at the entry still fires (the function's ftrace
// entry runs before the livepatch handler redirects the call), and a
// kretprobe, which hooks the entry, then sees the new function return;
// but a probe with a post handler holds the function's ftrace IPMODIFY
// slot, which the livepatch needs, so the load fails (EBUSY).
func (k Kprobe) What(patch string) string {
	switch {
	case k.Offset > 0 && !k.Return:
		return fmt.Sprintf("%s: once the patch is applied, the old body of %s no longer runs and the probe stops firing; probe the new %s in module %s instead",
			k, k.Function, k.Function, patch)
	case k.Return:
		return fmt.Sprintf("%s: the probe keeps firing (it hooks the entry of the old %s and sees the new one in module %s return)", k, k.Function, patch)
	default:
		return fmt.Sprintf("%s: the probe keeps firing at the entry of %s, before the call goes to the new code in module %s; if it has a post handler, it holds the ftrace slot the livepatch needs and the load fails (EBUSY)",
			k, k.Function, patch)
	}
}

// Kprobes lists the kprobes of the running kernel from debugfs
// (kprobes/list), or, when debugfs is not mounted, the probes made
// through tracefs (kprobe_events). It returns nil, nil when neither is
// readable: the kernel's probes cannot be known then.
func (s *System) Kprobes() ([]Kprobe, error) {
	if b, err := os.ReadFile(filepath.Join(s.debugfs(), "kprobes", "list")); err == nil {
		return parseKprobeList(b), nil
	}
	for _, dir := range []string{s.tracefs(), filepath.Join(s.debugfs(), "tracing")} {
		if b, err := os.ReadFile(filepath.Join(dir, "kprobe_events")); err == nil {
			return parseKprobeEvents(b), nil
		}
	}
	return nil, nil
}

func (s *System) debugfs() string {
	if s.Debugfs != "" {
		return s.Debugfs
	}
	return "/sys/kernel/debug"
}

func (s *System) tracefs() string {
	if s.Tracefs != "" {
		return s.Tracefs
	}
	return "/sys/kernel/tracing"
}

// parseKprobeList reads debugfs kprobes/list, whose lines are written by
// report_probe in kernel/kprobes.c: "ADDR  TYPE  SYM+0xOFF  [MODULE] [FLAGS]",
// TYPE k or r; a probe without a symbol is printed as %pS, "SYM+0xOFF/0xSIZE".
func parseKprobeList(b []byte) []Kprobe {
	var out []Kprobe
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 {
			continue
		}
		k := Kprobe{Return: f[1] == "r"}
		if !parseSymOff(f[2], &k) {
			continue
		}
		for _, x := range f[3:] {
			if strings.HasPrefix(x, "[") {
				k.Flags = append(k.Flags, strings.Trim(x, "[]"))
			} else if k.Module == "" {
				k.Module = x
			}
		}
		out = append(out, k)
	}
	return out
}

// parseKprobeEvents reads tracefs kprobe_events: "p:GROUP/EVENT [MOD:]SYM[+OFF] ARGS..."
// (r or rNN for return probes; Documentation/trace/kprobetrace.rst).
// Probes on raw addresses name no function and are left out.
func parseKprobeEvents(b []byte) []Kprobe {
	var out []Kprobe
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] == "" {
			continue
		}
		k := Kprobe{Return: f[0][0] == 'r'}
		target := f[1]
		if mod, sym, ok := strings.Cut(target, ":"); ok {
			k.Module, target = mod, sym
		}
		if !parseSymOff(target, &k) || strings.HasPrefix(k.Function, "0x") {
			continue
		}
		out = append(out, k)
	}
	return out
}

// parseSymOff reads "sym", "sym+0x10", "sym+16" or "sym+0x10/0x80".
func parseSymOff(s string, k *Kprobe) bool {
	s, _, _ = strings.Cut(s, "/")
	sym, off, ok := strings.Cut(s, "+")
	if sym == "" {
		return false
	}
	k.Function = sym
	if ok {
		n, err := strconv.ParseUint(off, 0, 64)
		if err != nil {
			return false
		}
		k.Offset = n
	}
	return true
}

// ProbesOn returns the kprobes of the running kernel on functions that the
// livepatch module f replaces, as far as its klp tables say (the names
// they hold, matched with the probed functions and their objects). It
// returns nil when the kernel's probes cannot be read.
func (s *System) ProbesOn(f *kmod.File) ([]Kprobe, error) {
	probes, err := s.Kprobes()
	if err != nil || len(probes) == 0 {
		return nil, err
	}
	names, err := kmod.DataStrings(f.Data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Path, err)
	}
	var out []Kprobe
	for _, p := range probes {
		if slices.Contains(names, p.Function) && (p.Module == "" || slices.Contains(names, p.Module)) {
			out = append(out, p)
		}
	}
	return out, nil
}
