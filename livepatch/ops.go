package livepatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/graft-live/graft/kmod"
)

// DefaultTimeout is how long Apply and Revert wait for a transition.
const DefaultTimeout = 60 * time.Second

// pollInterval is how often a transition is sampled.
const pollInterval = 100 * time.Millisecond

// Options tune Apply and Revert.
type Options struct {
	// Params are module parameters ("replace=1 foo=bar"), for Apply.
	Params string
	// Timeout bounds the wait for the transition (0 = DefaultTimeout).
	Timeout time.Duration
	// NoWait returns as soon as the module is loaded.
	NoWait bool
	// KeepOnStall leaves a stalled transition as it is instead of reversing
	// it and unloading the module.
	KeepOnStall bool
	// Progress is called with each sample of the transition (may be nil).
	Progress func(Progress)
	// Warn is told, before the module is loaded, what the operator should
	// know first: kprobes on functions the patch replaces (may be nil).
	Warn func(string)
}

func (o Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return DefaultTimeout
}

// checkRoot refuses early what the kernel would refuse with EPERM.
func checkRoot() error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	return nil
}

// Apply loads the livepatch module at path and waits until every task runs
// the patched code; see ApplyFile.
func (s *System) Apply(ctx context.Context, path string, opts Options) (*kmod.Module, error) {
	if err := checkRoot(); err != nil {
		return nil, err
	}
	if err := s.Supported(); err != nil {
		return nil, err
	}
	f, err := kmod.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Module, s.ApplyFile(ctx, f, opts)
}

// ApplyFile loads an open livepatch module and waits until every task runs
// the patched code. The kernel gets the very file whose bytes were checked
// (finit_module on the same descriptor: finit_module rather than
// init_module with the bytes, because IMA appraisal policies may refuse
// the latter). On a stall it names the blocking tasks and, unless
// KeepOnStall, reverses the transition and unloads the module, so that
// nothing stays half-applied; cancelling ctx does the same.
func (s *System) ApplyFile(ctx context.Context, f *kmod.File, opts Options) error {
	if err := checkRoot(); err != nil {
		return err
	}
	if err := s.Supported(); err != nil {
		return err
	}
	release, err := s.Release()
	if err != nil {
		return err
	}
	if err := CheckModule(f.Module, f.Path, release); err != nil {
		return err
	}
	if loaded, _ := s.LoadedModules(); slices.Contains(loaded, f.Name) {
		return fmt.Errorf("%s: %w: module %s is loaded ('graft status' shows it; 'graft revert %s' removes it)", f.Path, ErrAlreadyLoaded, f.Name, f.Name)
	}
	if opts.Warn != nil {
		probes, err := s.ProbesOn(f)
		if err != nil {
			return err
		}
		for _, p := range probes {
			opts.Warn(p.What(f.Name))
		}
	}
	if err := s.load(f, opts.Params); err != nil {
		return err
	}
	if opts.NoWait {
		return nil
	}
	err = s.wait(ctx, f.Name, StatePatched, opts.timeout(), opts.Progress)
	var stall *StallError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &stall) && opts.KeepOnStall:
		return err
	case errors.As(err, &stall), ctx.Err() != nil:
		// Reverse: writing 0 to enabled during a transition sends the
		// tasks back; then the module can go. The caller's context may be
		// cancelled already, so the clean-up gets its own.
		cctx, cancel := context.WithTimeout(context.Background(), opts.timeout())
		defer cancel()
		if rerr := s.disable(cctx, f.Name, opts.timeout(), nil); rerr != nil {
			return errors.Join(err, fmt.Errorf("reverse the transition of %s: %w", f.Name, rerr))
		}
		if rerr := s.unload(cctx, f.Name); rerr != nil {
			return errors.Join(err, rerr)
		}
		if stall != nil {
			stall.Reverted = true
		}
		return err
	default:
		return err
	}
}

// load calls finit_module and turns its errno into an error that says what
// to do, with the kernel's own messages about the module.
func (s *System) load(f *kmod.File, params string) error {
	log := openKmsg()
	err := unix.FinitModule(int(f.F.Fd()), params, 0)
	if err == nil {
		log.Close()
		return nil
	}
	msgs := readKmsg(log, f.Name)
	var kind error
	hint := ""
	switch {
	case errors.Is(err, unix.EEXIST):
		kind, hint = ErrAlreadyLoaded, "'graft revert "+f.Name+"' removes the loaded one"
	case errors.Is(err, unix.EKEYREJECTED), errors.Is(err, unix.ENOKEY), errors.Is(err, unix.EBADMSG):
		kind, hint = ErrSignature, "sign the module with a key the kernel trusts (or enroll yours with mokutil)"
	case errors.Is(err, unix.EPERM):
		kind, hint = ErrSignature, "the kernel refuses unsigned or untrusted modules (module.sig_enforce=1 or lockdown): sign the module"
	case errors.Is(err, unix.ENOEXEC):
		kind, hint = ErrCorrupt, "the kernel says the module format is invalid"
	default:
		kind, hint = ErrRefused, "see the kernel messages"
	}
	text := fmt.Sprintf("load %s: %v: %v; %s", f.Path, kind, err, hint)
	if len(msgs) > 0 {
		text += "\nkernel: " + strings.Join(msgs, "\nkernel: ")
	}
	return &loadError{kind: kind, errno: err, text: text}
}

type loadError struct {
	kind, errno error
	text        string
}

func (e *loadError) Error() string   { return e.text }
func (e *loadError) Unwrap() []error { return []error{e.kind, e.errno} }

// kmsg reads the kernel log from a position onwards. It uses raw
// syscalls: an *os.File opened O_NONBLOCK would be handed to Go's poller,
// which waits for more records instead of returning EAGAIN at the end.
type kmsg struct{ fd int }

// openKmsg opens /dev/kmsg positioned at its end, so that what the module
// load logs can be read afterwards; nil when it cannot.
func openKmsg() *kmsg {
	fd, err := unix.Open("/dev/kmsg", unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	if _, err := unix.Seek(fd, 0, io.SeekEnd); err != nil {
		unix.Close(fd)
		return nil
	}
	return &kmsg{fd: fd}
}

func (k *kmsg) Close() {
	if k != nil {
		unix.Close(k.fd)
	}
}

// readKmsg returns the new kernel messages that mention name, livepatch or
// modules, and closes k.
func readKmsg(k *kmsg, name string) []string {
	if k == nil {
		return nil
	}
	defer k.Close()
	var out []string
	buf := make([]byte, 8192)
	for {
		// One read returns one record: "prio,seq,time,flags;message\n".
		n, err := unix.Read(k.fd, buf)
		if n <= 0 || err != nil {
			return out
		}
		_, msg, ok := strings.Cut(string(buf[:n]), ";")
		if !ok {
			continue
		}
		msg, _, _ = strings.Cut(msg, "\n")
		if strings.Contains(msg, name) || strings.Contains(msg, "livepatch") || strings.Contains(msg, "module") {
			out = append(out, msg)
		}
	}
}

// Revert disables the patch name, waits for the transition back, and
// unloads its module. A patch that was already replaced by a cumulative one
// (its module loaded, its sysfs entry gone) is just unloaded.
func (s *System) Revert(ctx context.Context, name string, opts Options) error {
	if err := checkRoot(); err != nil {
		return err
	}
	if err := s.Supported(); err != nil {
		return err
	}
	p, err := s.Patch(name)
	switch {
	case errors.Is(err, ErrNotFound):
		loaded, _ := s.LoadedModules()
		if !slices.Contains(loaded, name) {
			return fmt.Errorf("%w: %s ('graft status' lists the loaded patches)", ErrNotFound, name)
		}
	case err != nil:
		return err
	case p.Enabled || p.Transition:
		if err := s.disable(ctx, name, opts.timeout(), opts.Progress); err != nil {
			return err
		}
	}
	return s.unload(ctx, name)
}

// disable writes 0 to enabled (which also reverses a transition in
// progress) and waits for the tasks to switch back.
func (s *System) disable(ctx context.Context, name string, timeout time.Duration, progress func(Progress)) error {
	if err := os.WriteFile(filepath.Join(s.Sysfs, name, "enabled"), []byte("0"), 0); err != nil {
		if removed(err) {
			return nil
		}
		return fmt.Errorf("disable %s: %w", name, err)
	}
	return s.wait(ctx, name, StateUnpatched, timeout, progress)
}

// unload removes the module, retrying briefly: the kernel drops its last
// reference from a work item after the transition ends.
func (s *System) unload(ctx context.Context, name string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := unix.DeleteModule(name, unix.O_NONBLOCK)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !(errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EWOULDBLOCK)) || time.Now().After(deadline) {
			return fmt.Errorf("unload %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("unload %s: %w", name, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// wait follows the transition of patch towards target until it ends, ctx
// ends (ctx.Err()) or timeout passes (*StallError with the blockers).
func (s *System) wait(ctx context.Context, patch string, target int, timeout time.Duration, progress func(Progress)) error {
	deadline := time.Now().Add(timeout)
	var last Progress
	for {
		inTransition, err := readBool(filepath.Join(s.Sysfs, patch, "transition"))
		if removed(err) {
			// A disabled patch leaves sysfs once its transition is over.
			inTransition, err = false, nil
		}
		if err != nil {
			return err
		}
		if !inTransition {
			if progress != nil && last.Total > 0 && last.Done < last.Total {
				progress(Progress{Patch: patch, Target: last.Target, Done: last.Total, Total: last.Total})
			}
			return nil
		}
		pr, err := s.TransitionProgress(patch, target)
		if err == nil && progress != nil {
			progress(pr)
			last = pr
		}
		if time.Now().After(deadline) {
			return s.stallError(patch, target, pr.Pending)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}

func (s *System) stallError(patch string, target int, pending []Task) error {
	funcs := map[string]bool{}
	if p, err := s.Patch(patch); err == nil {
		funcs = functionSet(p)
	}
	e := &StallError{Patch: patch, Target: stateName(target)}
	for _, t := range pending {
		s.ReadStack(&t, funcs)
		e.Blockers = append(e.Blockers, t)
	}
	return e
}

// RevertOrder lists every livepatch to revert, newest first: the patches in
// sysfs, then replaced patches whose modules are still loaded.
func (s *System) RevertOrder() ([]string, error) {
	ps, err := s.Patches()
	if err != nil {
		return nil, err
	}
	names := s.Newest(ps)
	mods, err := s.LivepatchModules()
	if err != nil {
		return nil, err
	}
	for _, m := range mods {
		if !slices.Contains(names, m) {
			names = append(names, m)
		}
	}
	return names, nil
}

// Force marks every task of a patch in transition as switched. It is for
// when the blocking tasks cannot be moved otherwise: the kernel then can
// never unload the module, since a task may still run the old code.
func (s *System) Force(name string) error {
	if err := checkRoot(); err != nil {
		return err
	}
	p, err := s.Patch(name)
	if err != nil {
		return err
	}
	if !p.Transition {
		return fmt.Errorf("force %s: %w", name, ErrNotInTransition)
	}
	if err := os.WriteFile(filepath.Join(s.Sysfs, name, "force"), []byte("1"), 0); err != nil {
		return fmt.Errorf("force %s: %w", name, err)
	}
	return nil
}
