package livepatch

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// System is the running kernel as seen through its file systems.
type System struct {
	// Sysfs is the livepatch directory, normally /sys/kernel/livepatch.
	Sysfs string
	// Proc is the proc mount, normally /proc.
	Proc string
	// Debugfs and Tracefs are where debugfs and tracefs are mounted ("" =
	// /sys/kernel/debug and /sys/kernel/tracing): the kernel's kprobes.
	Debugfs, Tracefs string
}

// Open returns the running kernel's System.
func Open() *System {
	return &System{Sysfs: "/sys/kernel/livepatch", Proc: "/proc"}
}

// Supported reports ErrNoLivepatch when the kernel lacks livepatch.
func (s *System) Supported() error {
	if st, err := os.Stat(s.Sysfs); err != nil || !st.IsDir() {
		return ErrNoLivepatch
	}
	return nil
}

// Release is the running kernel's release (uname -r).
func (s *System) Release() (string, error) {
	b, err := os.ReadFile(filepath.Join(s.Proc, "sys", "kernel", "osrelease"))
	if err != nil {
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			return "", err
		}
		return unix.ByteSliceToString(u.Release[:]), nil
	}
	return strings.TrimSpace(string(b)), nil
}

// Patch is one livepatch as the kernel shows it in sysfs.
type Patch struct {
	Name       string `json:"name"`
	Enabled    bool   `json:"enabled"`
	Transition bool   `json:"transition"`
	// Replace is the patch's atomic-replace flag; nil when the kernel does
	// not expose it (before 6.11).
	Replace *bool `json:"replace"`
	// StackOrder is the patch's position in the kernel's patch stack
	// (1 = oldest); 0 when the kernel does not expose it (before 6.14).
	StackOrder int      `json:"stack_order,omitempty"`
	Objects    []Object `json:"objects"`
}

// Object is a patched object: vmlinux or a module.
type Object struct {
	Name string `json:"name"`
	// Patched says whether the object's functions are redirected now; nil
	// when the kernel does not expose it.
	Patched   *bool      `json:"patched"`
	Functions []Function `json:"functions"`
}

// Function is one patched function.
type Function struct {
	Name string `json:"name"`
	// Sympos disambiguates functions of the same name (1 = first).
	Sympos int `json:"sympos"`
	// Owner is the patch whose version of the function runs now (set by
	// ReadStatus).
	Owner string `json:"owner,omitempty"`
}

// Patches reads every loaded livepatch, sorted by name.
func (s *System) Patches() ([]Patch, error) {
	if err := s.Supported(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(s.Sysfs)
	if err != nil {
		return nil, err
	}
	var ps []Patch
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		p, err := s.Patch(e.Name())
		if errors.Is(err, ErrNotFound) {
			continue // gone while we read
		}
		if err != nil {
			return nil, err
		}
		ps = append(ps, *p)
	}
	return ps, nil
}

// Patch reads one livepatch.
func (s *System) Patch(name string) (*Patch, error) {
	dir := filepath.Join(s.Sysfs, name)
	gone := fmt.Errorf("%w: %s", ErrNotFound, name)
	enabled, err := readBool(filepath.Join(dir, "enabled"))
	if removed(err) {
		return nil, gone
	}
	if err != nil {
		return nil, err
	}
	p := &Patch{Name: name, Enabled: enabled}
	if p.Transition, err = readBool(filepath.Join(dir, "transition")); removed(err) {
		return nil, gone
	} else if err != nil {
		return nil, err
	}
	if r, err := readBool(filepath.Join(dir, "replace")); err == nil {
		p.Replace = &r
	}
	if b, err := os.ReadFile(filepath.Join(dir, "stack_order")); err == nil {
		p.StackOrder, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	objs, err := os.ReadDir(dir)
	if removed(err) {
		return nil, gone
	}
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		if !o.IsDir() {
			continue
		}
		obj := Object{Name: o.Name()}
		if v, err := readBool(filepath.Join(dir, o.Name(), "patched")); err == nil {
			obj.Patched = &v
		}
		fns, err := os.ReadDir(filepath.Join(dir, o.Name()))
		if removed(err) {
			return nil, gone
		}
		if err != nil {
			return nil, err
		}
		for _, f := range fns {
			if !f.IsDir() {
				continue
			}
			// The kernel names function directories "name,sympos".
			fname, pos, _ := strings.Cut(f.Name(), ",")
			n, _ := strconv.Atoi(pos)
			obj.Functions = append(obj.Functions, Function{Name: fname, Sympos: n})
		}
		p.Objects = append(p.Objects, obj)
	}
	return p, nil
}

// removed reports an error of reading a sysfs file of a patch that the
// kernel is removing: gone (ENOENT), or going while open (ENODEV: kernfs
// answers reads of a deactivated node so), as a disabled patch does once
// its transition is over.
func removed(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENODEV)
}

func readBool(path string) (bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	switch strings.TrimSpace(string(b)) {
	case "1", "Y", "y":
		return true, nil
	case "0", "N", "n":
		return false, nil
	}
	return false, fmt.Errorf("%s: unexpected %q", path, bytes.TrimSpace(b))
}

// LoadedModules lists /proc/modules names, newest first: the kernel adds
// each module at the head of its list.
func (s *System) LoadedModules() ([]string, error) {
	return s.modules(func(string) bool { return true })
}

// LivepatchModules lists the loaded modules that are livepatches (their
// /proc/modules flags carry the taint K), newest first. It includes patches
// replaced by a cumulative patch, which have left sysfs but stay loaded.
func (s *System) LivepatchModules() ([]string, error) {
	return s.modules(func(flags string) bool {
		return strings.HasPrefix(flags, "(") && strings.Contains(flags, "K")
	})
}

// modules lists the /proc/modules names whose last field (the taint flags
// in parentheses, when there are any) keep accepts.
func (s *System) modules(keep func(lastField string) bool) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(s.Proc, "modules"))
	if err != nil {
		return nil, err
	}
	var names []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 && keep(f[len(f)-1]) {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// Tainted reports the kernel's livepatch taint (flag K, bit 15).
func (s *System) Tainted() bool {
	b, err := os.ReadFile(filepath.Join(s.Proc, "sys", "kernel", "tainted"))
	if err != nil {
		return false
	}
	n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return n&(1<<15) != 0
}

// Newest orders patch names newest first: by stack_order where the kernel
// has it, else by module load order (/proc/modules lists the newest first).
func (s *System) Newest(ps []Patch) []string {
	names := make([]string, len(ps))
	order := map[string]int{}
	haveStack := len(ps) > 0
	for i, p := range ps {
		names[i] = p.Name
		if p.StackOrder == 0 {
			haveStack = false
		}
	}
	if haveStack {
		for _, p := range ps {
			order[p.Name] = -p.StackOrder
		}
	} else if mods, err := s.LoadedModules(); err == nil {
		for i, m := range mods {
			order[m] = i
		}
	}
	sort.SliceStable(names, func(i, j int) bool {
		oi, iok := order[names[i]]
		oj, jok := order[names[j]]
		if iok != jok {
			return iok
		}
		return oi < oj
	})
	return names
}
