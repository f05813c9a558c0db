package kbuild

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/graft-live/graft/internal/flock"
)

// preparedMarker is written last into a prepared tree.
const preparedMarker = ".graft-prepared"

// ObjectCFLAGS are added to every object compiled for comparison: one
// section per function and per data object, so that objects can be
// compared and extracted symbol by symbol.
var ObjectCFLAGS = []string{"-ffunction-sections", "-fdata-sections"}

// Tree is a kernel source tree configured for one target kernel and
// prepared (modules_prepare), from which single objects are compiled with
// the kernel's exact flags.
type Tree struct {
	Dir string
}

// Prepare makes dst a prepared tree: a hard-linked copy of sourceDir (the
// pristine source stays untouched), the target's config, olddefconfig and
// modules_prepare. A tree prepared before is reused; an interrupted
// preparation is redone. Several processes may prepare the same dst at once.
func Prepare(ctx context.Context, sourceDir, config, dst string, log io.Writer) (*Tree, error) {
	t := &Tree{Dir: dst}
	if _, err := os.Stat(filepath.Join(dst, preparedMarker)); err == nil {
		return t, nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return nil, err
	}
	err := flock.Do(ctx, dst+".lock", func() error {
		if _, err := os.Stat(filepath.Join(dst, preparedMarker)); err == nil {
			return nil
		}
		if err := os.RemoveAll(dst); err != nil {
			return err
		}
		if err := run(ctx, "", log, "cp", "-al", sourceDir, dst); err != nil {
			return err
		}
		cfg, err := os.ReadFile(config)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dst, ".config"), cfg, 0o644); err != nil {
			return err
		}
		if err := run(ctx, dst, log, "make", "olddefconfig"); err != nil {
			return err
		}
		if err := run(ctx, dst, log, "make", "-j"+strconv.Itoa(runtime.NumCPU()), "modules_prepare"); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, preparedMarker), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644)
	})
	if err != nil {
		os.RemoveAll(dst)
		return nil, fmt.Errorf("kbuild: prepare %s: %w", dst, err)
	}
	return t, nil
}

// CompileObject builds relPath (e.g. "fs/proc/cmdline.o") with the kernel's
// own rules plus ObjectCFLAGS and extraCFLAGS, and returns its path. The
// object is always rebuilt.
func (t *Tree) CompileObject(ctx context.Context, relPath string, extraCFLAGS []string, log io.Writer) (string, error) {
	var obj string
	err := flock.Do(ctx, filepath.Join(t.Dir, ".graft-compile.lock"), func() error {
		var err error
		obj, err = t.compile(ctx, relPath, extraCFLAGS, log)
		return err
	})
	return obj, err
}

func (t *Tree) compile(ctx context.Context, relPath string, extraCFLAGS []string, log io.Writer) (string, error) {
	if !strings.HasSuffix(relPath, ".o") || filepath.IsAbs(relPath) || strings.Contains(relPath, "..") {
		return "", fmt.Errorf("kbuild: %q is not an object path inside the tree (like fs/proc/cmdline.o)", relPath)
	}
	obj := filepath.Join(t.Dir, relPath)
	os.Remove(obj) // kbuild decides by timestamps; a swapped source may look older
	flags := strings.Join(append(append([]string(nil), ObjectCFLAGS...), extraCFLAGS...), " ")
	if err := run(ctx, t.Dir, log, "make", "-j"+strconv.Itoa(runtime.NumCPU()), "KCFLAGS="+flags, relPath); err != nil {
		return "", fmt.Errorf("kbuild: compile %s: %w", relPath, err)
	}
	return obj, nil
}

// CompilePair compiles relPath twice, from the tree's source and from
// patched (the new contents of the .c file), into outDir/orig/ and
// outDir/patched/. Both compile at the same path, so __FILE__ and the
// debug information agree. The tree's source is restored afterwards; the
// pristine source it was copied from is never written (the patched file
// replaces the hard link instead of writing through it).
func (t *Tree) CompilePair(ctx context.Context, relPath string, patched []byte, outDir string, log io.Writer) (origObj, patchedObj string, err error) {
	src := filepath.Join(t.Dir, strings.TrimSuffix(relPath, ".o")+".c")
	original, err := os.ReadFile(src)
	if err != nil {
		return "", "", fmt.Errorf("kbuild: %w", err)
	}
	err = flock.Do(ctx, filepath.Join(t.Dir, ".graft-compile.lock"), func() (err error) {
		if origObj, err = t.compileTo(ctx, relPath, filepath.Join(outDir, "orig"), log); err != nil {
			return err
		}
		if err := replaceFile(src, patched); err != nil {
			return err
		}
		defer func() {
			if rerr := replaceFile(src, original); rerr != nil && err == nil {
				err = rerr
			}
			os.Remove(filepath.Join(t.Dir, relPath))
		}()
		patchedObj, err = t.compileTo(ctx, relPath, filepath.Join(outDir, "patched"), log)
		return err
	})
	return origObj, patchedObj, err
}

func (t *Tree) compileTo(ctx context.Context, relPath, dir string, log io.Writer) (string, error) {
	obj, err := t.compile(ctx, relPath, nil, log)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(obj)
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, relPath)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	return out, os.WriteFile(out, b, 0o644)
}

// replaceFile writes data to a new file renamed over path, so that a hard
// link at path is replaced rather than written through.
func replaceFile(path string, data []byte) error {
	tmp := path + ".graft-tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func run(ctx context.Context, dir string, log io.Writer, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var out strings.Builder
	w := io.Writer(&out)
	if log != nil {
		w = io.MultiWriter(&out, log)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tailLines(out.String(), 20))
	}
	return nil
}
