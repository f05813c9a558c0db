package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/graft-live/graft/build"
	"github.com/graft-live/graft/kbuild"
	"github.com/graft-live/graft/kernel"
)

// changedFiles lists the .c files that differ between the source trees
// older and newer (relative paths, sorted), leaving out host tools and
// other architectures, whose count it returns too. Files only one tree has
// are not changes of existing code and are left out as well.
func changedFiles(older, newer string) (files []string, skipped int, err error) {
	err = filepath.WalkDir(newer, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(newer, p)
		if d.IsDir() || !strings.HasSuffix(rel, ".c") {
			return nil
		}
		a, err := os.ReadFile(filepath.Join(older, rel))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Equal(a, b) {
			return nil
		}
		if notKernelCode(rel) {
			skipped++
			return nil
		}
		files = append(files, rel)
		return nil
	})
	sort.Strings(files)
	return files, skipped, err
}

// notKernelCode reports files that no x86 kernel or module is built from:
// host tools and other architectures.
func notKernelCode(rel string) bool {
	for _, dir := range []string{"tools/", "scripts/", "Documentation/", "usr/"} {
		if strings.HasPrefix(rel, dir) {
			return true
		}
	}
	if arch, ok := strings.CutPrefix(rel, "arch/"); ok {
		return !strings.HasPrefix(arch, "x86/")
	}
	return false
}

// makePatch writes the unified diff of one file between the trees, as
// diff -u writes it with a/ and b/ paths, and returns its path.
func makePatch(dir, older, newer, file string) (string, error) {
	p := filepath.Join(dir, "patches", strings.ReplaceAll(file, "/", "__")+".patch")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	out, err := exec.Command("diff", "-u", "--label", "a/"+file, "--label", "b/"+file,
		filepath.Join(older, file), filepath.Join(newer, file)).Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		return "", fmt.Errorf("diff -u %s: %v", file, err)
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, out, 0o644); err != nil {
		return "", err
	}
	return p, os.Rename(tmp, p)
}

// moduleName names the livepatch of a file: unique per file, and short
// enough for the kernel.
func moduleName(file string) string {
	sum := sha256.Sum256([]byte(file))
	return "lpc_" + hex.EncodeToString(sum[:6])
}

// buildAll builds every selected patch that has no result yet.
func buildAll(ctx context.Context, c config, target *kernel.Target, newer string, files []string, store *results) error {
	spec := kernel.Spec{Release: target.Release + "=" + target.Version}
	todo := 0
	for _, f := range files {
		if _, ok := store.get(f); !ok {
			todo++
		}
	}
	logf("building %d patches (%d have results)", todo, len(files)-todo)
	n := 0
	for _, f := range files {
		if _, ok := store.get(f); ok {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		n++
		p, err := makePatch(c.work, target.SourceDir, newer, f)
		if err != nil {
			return err
		}
		name := moduleName(f)
		out := filepath.Join(c.work, "modules", name+".ko")
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		start := time.Now()
		rep, err := build.Build(ctx, build.Options{Patches: []string{p}, Kernel: spec, Output: out, Name: name})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r := classify(f, rep, err)
		r.BuildSeconds = time.Since(start).Seconds()
		if r.Outcome == outBuilt {
			r.Module = out
		}
		detail := r.Finding
		if r.Outcome == outError {
			detail = firstLine(r.Error)
		}
		logf("[%d/%d] %s: %s %s (%.1f s)", n, todo, f, r.Outcome, detail, r.BuildSeconds)
		if err := store.put(r); err != nil {
			return err
		}
	}
	return nil
}

// classify turns the outcome of a build into a result.
func classify(file string, rep *build.Report, err error) result {
	r := result{File: file}
	if rep != nil {
		seen := map[string]bool{}
		for _, fn := range rep.Functions {
			if !seen[fn.Object] {
				seen[fn.Object] = true
				r.Objects = append(r.Objects, fn.Object)
			}
		}
	}
	var refused *build.RefusedError
	switch {
	case err == nil:
		r.Outcome = outBuilt
	case errors.As(err, &refused):
		var ids []string
		notBuilt := true
		for _, f := range refused.Findings {
			if !slices.Contains(ids, f.ID) {
				ids = append(ids, f.ID)
			}
			notBuilt = notBuilt && f.ID == "not-built"
		}
		r.Outcome, r.Finding = outRefused, strings.Join(ids, ",")
		if notBuilt {
			r.Outcome = outNotBuilt
		}
		r.Error = err.Error()
	case errors.Is(err, build.ErrNoChanges):
		// The configuration builds the file but not the changed lines
		// (#ifdef, or a comment): nothing of the running kernel changes.
		r.Outcome, r.Error = outNotBuilt, err.Error()
	case errors.Is(err, kbuild.ErrCompile):
		r.Outcome, r.Error = outNotAlone, err.Error()
	default:
		r.Outcome, r.Error = outError, err.Error()
	}
	return r
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
