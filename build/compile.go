package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/graft-live/graft/elfobj"
	"github.com/graft-live/graft/kbuild"
	"github.com/graft-live/graft/kernel"
	"github.com/graft-live/graft/srcpatch"
)

// pair is one object compiled from the original and the patched source.
type pair struct {
	spec          objSpec
	orig, patched kbuild.Object
}

// compile builds every object twice, at once: the originals in the
// prepared tree (or from the cache of original objects, which never change
// for a target), the patched ones in a second tree that holds the edits.
func (b *builder) compile(ctx context.Context, applied *srcpatch.Result, specs []objSpec) ([]pair, error) {
	t := b.target
	prepared, err := kbuild.Prepare(ctx, b.tc, t.SourceDir, t.Config, t.PreparedDir(), b.opts.Log)
	if err != nil {
		return nil, err
	}
	scratch, err := prepared.Clone(ctx, t.ScratchDir())
	if err != nil {
		return nil, err
	}
	var edits []kbuild.Edit
	for _, c := range applied.Changes {
		edits = append(edits, kbuild.Edit{Path: c.Path, Data: c.New, Delete: c.New == nil})
	}

	paths := make([]string, len(specs))
	for i, s := range specs {
		paths[i] = s.Path
	}
	cache := origCache{dir: filepath.Join(t.Dir, "objects", flagsKey())}
	orig := map[string]kbuild.Object{}
	var missing []string
	for _, p := range paths {
		if o, ok := cache.get(p); ok {
			orig[p] = o
		} else {
			missing = append(missing, p)
		}
	}
	jobs := runtime.NumCPU()
	patchedJobs := jobs
	if len(missing) > 0 {
		patchedJobs = max(1, (jobs+1)/2)
	}
	// make -k: the objects that fail are told apart from those that build.
	const keepGoing = true

	var g errgroup.Group
	var origFailed, patchedFailed []string
	var origErr, patchedErr error
	var origBuilt, patchedBuilt []kbuild.Object
	if len(missing) > 0 {
		g.Go(func() error {
			return prepared.Lock(ctx, func() error {
				origBuilt, origFailed, origErr = prepared.Compile(ctx, missing, filepath.Join(b.work, "orig"),
					kbuild.CompileOptions{Jobs: max(1, jobs-patchedJobs), KeepGoing: keepGoing, Log: b.opts.Log})
				return nil
			})
		})
	}
	g.Go(func() error {
		return scratch.Lock(ctx, func() error {
			return scratch.WithEdits(edits, func() error {
				patchedBuilt, patchedFailed, patchedErr = scratch.Compile(ctx, paths, filepath.Join(b.work, "patched"),
					kbuild.CompileOptions{Jobs: patchedJobs, KeepGoing: keepGoing, Log: b.opts.Log})
				return nil
			})
		})
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	for _, o := range origBuilt {
		orig[o.Path] = o
		if err := cache.put(o); err != nil {
			return nil, err
		}
	}
	return b.pairs(ctx, specs, orig, patchedBuilt, origFailed, patchedFailed, origErr, patchedErr)
}

// pairs matches the compiled objects. An object whose original does not
// compile is not built by the target's configuration: a finding for a file
// the patch changes, a note for a file that only includes a changed header.
func (b *builder) pairs(ctx context.Context, specs []objSpec, orig map[string]kbuild.Object, patched []kbuild.Object, origFailed, patchedFailed []string, origErr, patchedErr error) ([]pair, error) {
	failed := map[string]bool{}
	for _, f := range origFailed {
		failed[f] = true
	}
	if origErr != nil && len(origFailed) == 0 {
		return nil, origErr
	}
	if patchedErr != nil && len(patchedFailed) == 0 {
		return nil, fmt.Errorf("the patched source does not compile: %w", patchedErr)
	}
	pfailed := map[string]bool{}
	for _, f := range patchedFailed {
		pfailed[f] = true
	}
	byPath := map[string]kbuild.Object{}
	for _, o := range patched {
		byPath[o.Path] = o
	}
	var out []pair
	var broken []string
	for _, s := range specs {
		switch {
		case failed[s.Path] && s.Header:
			b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("%s: does not compile for this kernel's configuration; skipped", s.Path))
		case failed[s.Path]:
			msg := "it does not compile for this kernel's configuration"
			var ce *kbuild.CompileError
			if errors.As(origErr, &ce) {
				msg += ":\n" + ce.Err.Error()
			}
			b.rep.finding(Finding{ID: "not-built", Severity: SeverityError, Where: s.Path, Message: msg,
				Suggestion: "check that the target kernel's configuration builds this file"})
		case pfailed[s.Path]:
			// A file the target does not build is that, whatever its
			// patched version needs to compile.
			built, err := b.builtByTarget(ctx, s, orig[s.Path])
			if err != nil {
				return nil, err
			}
			if built {
				broken = append(broken, s.Path)
			}
		default:
			o, ok := orig[s.Path]
			p, pok := byPath[s.Path]
			if !ok || !pok {
				return nil, fmt.Errorf("build: %s was not compiled", s.Path)
			}
			out = append(out, pair{spec: s, orig: o, patched: p})
		}
	}
	if len(broken) > 0 {
		return nil, fmt.Errorf("the patched source does not compile: %w", patchedErr)
	}
	return out, nil
}

// builtByTarget reports whether the target builds the object o (compiled
// from the original source) into vmlinux or its module; when it does not,
// the finding (or, for a header's user, the note) is recorded.
func (b *builder) builtByTarget(ctx context.Context, s objSpec, o kbuild.Object) (bool, error) {
	if o.File == "" {
		return true, nil
	}
	if err := b.loadSymbols(); err != nil {
		return false, err
	}
	f, err := elfobj.Open(o.File)
	if err != nil {
		return false, err
	}
	u := &unit{pair: pair{spec: s, orig: o}, object: "vmlinux", orig: f}
	if o.Module != "" {
		u.object = kernel.ModuleName(o.Module)
	}
	return b.checkBuilt(ctx, u)
}

// objectCacheFormat is the version of what the cache of original objects
// records about each object (kbuild.Object); a change starts a new cache.
// 2: the module of objects of Linux 6.2 and later (savedcmd_); 3: module
// objects without objtool where the kernel runs it at link time.
const objectCacheFormat = "3"

// flagsKey names the cache of original objects compiled with graft's
// flags: a change of the flags, or of the format, starts a new cache.
func flagsKey() string {
	sum := sha256.Sum256([]byte(objectCacheFormat + " " + strings.Join(kbuild.ObjectCFLAGS, " ")))
	return hex.EncodeToString(sum[:6])
}

// origCache keeps original objects of a target: its pristine source never
// changes, so an object compiled once stays valid.
type origCache struct{ dir string }

func (c origCache) get(path string) (kbuild.Object, bool) {
	var o kbuild.Object
	b, err := os.ReadFile(filepath.Join(c.dir, path+".json"))
	if err != nil || json.Unmarshal(b, &o) != nil {
		return o, false
	}
	o.File = filepath.Join(c.dir, path)
	if _, err := os.Stat(o.File); err != nil {
		return o, false
	}
	return o, true
}

// put copies o into the cache; the object is written before the
// description that makes it visible.
func (c origCache) put(o kbuild.Object) error {
	dst := filepath.Join(c.dir, o.Path)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	data, err := os.ReadFile(o.File)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(dst, data); err != nil {
		return err
	}
	desc, err := json.Marshal(o)
	if err != nil {
		return err
	}
	return writeFileAtomic(dst+".json", desc)
}

func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
