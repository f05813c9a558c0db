package kbuild

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/graft-live/graft/internal/flock"
)

// Files that graft keeps in a prepared tree.
const (
	// preparedMarker is written last into a prepared tree; it names the
	// pristine source the tree's files are hard links to.
	preparedMarker = ".graft-prepared"
	// journalFile lists the files an edit changed, so that they can be
	// restored even after graft was killed in the middle of a build.
	journalFile = ".graft-journal"
	// lockFile serializes builds in one tree.
	lockFile = ".graft-compile.lock"
)

// ObjectCFLAGS are added to every object compiled for comparison: one
// section per function and per data object, so that objects can be
// compared and extracted symbol by symbol.
var ObjectCFLAGS = []string{"-ffunction-sections", "-fdata-sections"}

// Tree is a kernel source tree configured for one target kernel and
// prepared (modules_prepare), from which single objects are compiled with
// the kernel's exact flags. Its source files are hard links to a pristine
// source tree, which graft never writes: an edit replaces a link instead
// of writing through it.
type Tree struct {
	// Dir is the tree.
	Dir string
	// Source is the pristine source tree the files are linked to.
	Source string
	// Toolchain runs make in the tree.
	Toolchain *Toolchain
}

// Prepare makes dst a prepared tree: a hard-linked copy of sourceDir (the
// pristine source stays untouched), the target's config, olddefconfig and
// modules_prepare, all run by tc. A tree prepared before is reused; an
// interrupted preparation is redone. Several processes may prepare the same
// dst at once.
func Prepare(ctx context.Context, tc *Toolchain, sourceDir, config, dst string, log io.Writer) (*Tree, error) {
	sourceDir, err := filepath.Abs(sourceDir)
	if err != nil {
		return nil, err
	}
	t := &Tree{Dir: dst, Source: sourceDir, Toolchain: tc}
	if isPrepared(dst) {
		return t, nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return nil, err
	}
	err = flock.Do(ctx, dst+".lock", func() error {
		if isPrepared(dst) {
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
		if err := kbuildMake(ctx, tc, dst, log, "olddefconfig"); err != nil {
			return err
		}
		if err := kbuildMake(ctx, tc, dst, log, "-j"+strconv.Itoa(runtime.NumCPU()), "modules_prepare"); err != nil {
			return err
		}
		return writeMarker(dst, sourceDir)
	})
	if err != nil {
		os.RemoveAll(dst)
		return nil, fmt.Errorf("kbuild: prepare %s: %w", dst, err)
	}
	return t, nil
}

func isPrepared(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, preparedMarker))
	return err == nil
}

func writeMarker(dir, source string) error {
	return os.WriteFile(filepath.Join(dir, preparedMarker), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"+source+"\n"), 0o644)
}

// Clone makes dst a second prepared tree like t, without preparing again:
// the source files are hard links to the pristine source, everything kbuild
// generated is copied (make writes some of its files in place, which must
// not reach t through a shared link). A clone made before is reused.
func (t *Tree) Clone(ctx context.Context, dst string) (*Tree, error) {
	c := &Tree{Dir: dst, Source: t.Source, Toolchain: t.Toolchain}
	if isPrepared(dst) {
		return c, nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return nil, err
	}
	err := flock.Do(ctx, dst+".lock", func() error {
		if isPrepared(dst) {
			return nil
		}
		if err := os.RemoveAll(dst); err != nil {
			return err
		}
		if err := t.copyTo(ctx, dst); err != nil {
			return err
		}
		return writeMarker(dst, t.Source)
	})
	if err != nil {
		os.RemoveAll(dst)
		return nil, fmt.Errorf("kbuild: clone %s: %w", t.Dir, err)
	}
	return c, nil
}

// copyTo links t's pristine files into dst and copies the rest.
func (t *Tree) copyTo(ctx context.Context, dst string) error {
	return filepath.WalkDir(t.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(t.Dir, p)
		if err != nil {
			return err
		}
		switch rel {
		case preparedMarker, journalFile, lockFile:
			return nil
		}
		out := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(out, info.Mode().Perm())
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, out)
		case !d.Type().IsRegular():
			return nil
		}
		if src := filepath.Join(t.Source, rel); sameFile(info, src) {
			return os.Link(src, out)
		}
		return copyFile(p, out, info)
	})
}

func sameFile(info fs.FileInfo, other string) bool {
	o, err := os.Stat(other)
	return err == nil && os.SameFile(info, o)
}

func copyFile(src, dst string, info fs.FileInfo) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	// make decides by timestamps: the copy must look as old as the original.
	return os.Chtimes(dst, info.ModTime(), info.ModTime())
}

// Edit is a change to one source file of a tree.
type Edit struct {
	// Path is relative to the tree: "fs/proc/cmdline.c".
	Path string
	// Data is the new contents; ignored when Delete is set.
	Data   []byte
	Delete bool
}

// Lock runs fn holding the tree's build lock: one build at a time per tree,
// across processes. Files edited by an earlier build that did not finish
// are restored first.
func (t *Tree) Lock(ctx context.Context, fn func() error) error {
	return flock.Do(ctx, filepath.Join(t.Dir, lockFile), func() error {
		if err := t.restore(); err != nil {
			return fmt.Errorf("kbuild: restore %s after an interrupted build: %w", t.Dir, err)
		}
		return fn()
	})
}

// WithEdits applies edits to the tree, runs fn and restores the tree's
// files. Callers hold the lock (Lock). The edited paths are journaled
// before anything is written, so that the next Lock restores them if graft
// dies in between.
func (t *Tree) WithEdits(edits []Edit, fn func() error) (err error) {
	if t.Source == "" {
		return fmt.Errorf("kbuild: %s has no pristine source to restore edits from", t.Dir)
	}
	var paths []string
	for _, e := range edits {
		if !localPath(e.Path) {
			return fmt.Errorf("kbuild: %q is not a path inside the tree", e.Path)
		}
		paths = append(paths, e.Path)
	}
	if err := writeAtomic(filepath.Join(t.Dir, journalFile), []byte(strings.Join(paths, "\n")+"\n")); err != nil {
		return err
	}
	defer func() {
		if rerr := t.restore(); rerr != nil && err == nil {
			err = fmt.Errorf("kbuild: restore %s: %w", t.Dir, rerr)
		}
	}()
	for _, e := range edits {
		p := filepath.Join(t.Dir, e.Path)
		if e.Delete {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		// A new file replaces the hard link instead of writing through it.
		if err := writeAtomic(p, e.Data); err != nil {
			return err
		}
	}
	return fn()
}

// restore undoes the edits the journal lists: each path becomes a link to
// the pristine file again, or disappears when the pristine source has none.
func (t *Tree) restore() error {
	jp := filepath.Join(t.Dir, journalFile)
	b, err := os.ReadFile(jp)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		rel := sc.Text()
		if rel == "" || !localPath(rel) {
			continue
		}
		p := filepath.Join(t.Dir, rel)
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		src := filepath.Join(t.Source, rel)
		if _, err := os.Stat(src); err == nil {
			if err := os.Link(src, p); err != nil {
				return err
			}
		}
	}
	return os.Remove(jp)
}

// localPath reports a relative path that stays inside the tree.
func localPath(p string) bool {
	return p != "" && !filepath.IsAbs(p) && filepath.IsLocal(p)
}

// Object is one object compiled from a tree.
type Object struct {
	// Path is the object's path in the tree: "fs/proc/cmdline.o".
	Path string `json:"path"`
	// File is where the compiled object was put.
	File string `json:"-"`
	// Module is the module the object is linked into ("ext4"), or "" when
	// it is built into vmlinux: kbuild compiles module objects with
	// -DMODULE and names the module in KBUILD_MODNAME.
	Module string `json:"module,omitempty"`
	// Command is the command kbuild ran to compile it.
	Command string `json:"-"`
}

// CompileOptions tune Compile.
type CompileOptions struct {
	// Jobs is how many compilers run at once (make -j; 0 = 1).
	Jobs int
	// KeepGoing compiles what it can (make -k): objects that fail are
	// returned as failed instead of failing the whole compile.
	KeepGoing bool
	// Log receives make's output (nil = discarded).
	Log io.Writer
}

// Compile builds the objects objs (paths like "fs/proc/cmdline.o") with the
// kernel's own rules plus ObjectCFLAGS, in one make run, and moves them into
// outDir at the same relative paths. Callers hold the lock. A compile error
// is a *CompileError carrying the compiler's messages; with KeepGoing, the
// objects that did not build are listed in failed instead, with the error
// for all of them.
func (t *Tree) Compile(ctx context.Context, objs []string, outDir string, opts CompileOptions) (built []Object, failed []string, err error) {
	for _, o := range objs {
		if !strings.HasSuffix(o, ".o") || !localPath(o) {
			return nil, nil, fmt.Errorf("kbuild: %q is not an object path inside the tree (like fs/proc/cmdline.o)", o)
		}
		// kbuild decides by timestamps and command lines; a swapped source
		// may look older than the object it replaces.
		os.Remove(filepath.Join(t.Dir, o))
	}
	args := []string{"-j" + strconv.Itoa(max(opts.Jobs, 1)), "KCFLAGS=" + strings.Join(ObjectCFLAGS, " ")}
	if t.delaysObjtool() {
		// objtool then runs when a module is linked, and would run on the
		// livepatch module too: an object that already has its sections
		// (.orc_unwind, .call_sites, ...) makes it stop there, which Linux
		// 7 treats as an error. Compiled without it, module objects are
		// like vmlinux objects, whose objtool pass waits for vmlinux.o.
		args = append(args, "OBJECT_FILES_NON_STANDARD=y")
	}
	if opts.KeepGoing {
		args = append(args, "-k")
	}
	merr := kbuildMake(ctx, t.Toolchain, t.Dir, opts.Log, append(args, objs...)...)
	if merr != nil && (!opts.KeepGoing || ctx.Err() != nil) {
		for _, o := range objs {
			os.Remove(filepath.Join(t.Dir, o))
		}
		return nil, nil, &CompileError{Objects: objs, Err: merr}
	}
	for _, o := range objs {
		p := filepath.Join(t.Dir, o)
		if _, err := os.Stat(p); err != nil {
			failed = append(failed, o)
			continue
		}
		obj, err := t.takeObject(o, p, outDir)
		if err != nil {
			return nil, nil, err
		}
		built = append(built, obj)
	}
	if len(failed) > 0 {
		return built, failed, &CompileError{Objects: failed, Err: merr}
	}
	return built, nil, nil
}

// delaysObjtool reports whether the tree's configuration runs objtool when
// objects are linked (vmlinux.o, modules) rather than on each object, as
// scripts/Makefile.lib does for these options (delay-objtool).
func (t *Tree) delaysObjtool() bool {
	for _, opt := range []string{"CONFIG_X86_KERNEL_IBT", "CONFIG_LTO_CLANG", "CONFIG_KLP_BUILD"} {
		if v, err := configString(filepath.Join(t.Dir, ".config"), opt); err == nil && v == "y" {
			return true
		}
	}
	return false
}

// ErrCompile matches a *CompileError.
var ErrCompile = errors.New("compile error")

// CompileError is a compile that failed; Error carries the compiler's
// messages.
type CompileError struct {
	Objects []string
	Err     error
}

func (e *CompileError) Error() string {
	return fmt.Sprintf("kbuild: compile %s: %v", strings.Join(e.Objects, " "), e.Err)
}

func (e *CompileError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrCompile) true.
func (e *CompileError) Is(target error) bool { return target == ErrCompile }

// takeObject moves a built object out of the tree and reads its .cmd file.
func (t *Tree) takeObject(rel, built, outDir string) (Object, error) {
	obj := Object{Path: rel, File: filepath.Join(outDir, rel)}
	cmd, err := os.ReadFile(filepath.Join(t.Dir, filepath.Dir(rel), "."+filepath.Base(rel)+".cmd"))
	if err != nil {
		return obj, fmt.Errorf("kbuild: %s: no command file: %w", rel, err)
	}
	obj.Command, obj.Module = parseCmd(string(cmd), rel)
	if err := os.MkdirAll(filepath.Dir(obj.File), 0o755); err != nil {
		return obj, err
	}
	if err := os.Rename(built, obj.File); err != nil {
		// Another file system: copy.
		b, rerr := os.ReadFile(built)
		if rerr != nil {
			return obj, rerr
		}
		if err := os.WriteFile(obj.File, b, 0o644); err != nil {
			return obj, err
		}
		os.Remove(built)
	}
	return obj, nil
}

// parseCmd reads the compile command of rel from kbuild's .cmd file, and
// the module it belongs to.
func parseCmd(cmdFile, rel string) (command, module string) {
	// Linux 6.2 renamed the variable to savedcmd_ (scripts/Kbuild.include).
	for _, line := range strings.Split(cmdFile, "\n") {
		line = strings.TrimPrefix(line, "saved")
		if c, ok := strings.CutPrefix(line, "cmd_"+rel+" := "); ok {
			command = c
			break
		}
	}
	isModule := false
	for _, f := range strings.Fields(command) {
		switch {
		case f == "-DMODULE":
			isModule = true
		case strings.HasPrefix(f, "-DKBUILD_MODNAME="):
			module = strings.Trim(strings.TrimPrefix(f, "-DKBUILD_MODNAME="), `'"`)
		}
	}
	if !isModule {
		module = ""
	}
	return command, module
}

// CompilePair compiles relPath twice, from the tree's source and from
// patched (the new contents of the .c file), into outDir/orig/ and
// outDir/patched/. Both compile at the same path, so __FILE__ and the
// debug information agree. The tree's source is restored afterwards.
func (t *Tree) CompilePair(ctx context.Context, relPath string, patched []byte, outDir string, log io.Writer) (origObj, patchedObj string, err error) {
	src := strings.TrimSuffix(relPath, ".o") + ".c"
	err = t.Lock(ctx, func() error {
		orig, _, err := t.Compile(ctx, []string{relPath}, filepath.Join(outDir, "orig"), CompileOptions{Log: log})
		if err != nil {
			return err
		}
		origObj = orig[0].File
		return t.WithEdits([]Edit{{Path: src, Data: patched}}, func() error {
			p, _, err := t.Compile(ctx, []string{relPath}, filepath.Join(outDir, "patched"), CompileOptions{Log: log})
			if err != nil {
				return err
			}
			patchedObj = p[0].File
			return nil
		})
	})
	return origObj, patchedObj, err
}

// writeAtomic writes data to a new file renamed over path, so that a hard
// link at path is replaced rather than written through.
func writeAtomic(path string, data []byte) error {
	tmp := path + ".graft-tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// kbuildMake runs make with kbuild's command line in dir, with the
// toolchain tc. Every make of a kernel tree goes through here.
func kbuildMake(ctx context.Context, tc *Toolchain, dir string, log io.Writer, args ...string) error {
	if tc != nil && tc.CC != "" {
		// The host programs too: a root file system of another release may
		// have no plain gcc.
		args = append([]string{"CC=" + tc.CC, "HOSTCC=" + tc.CC}, args...)
	}
	what := "make " + strings.Join(args, " ")
	if !tc.OnHost() {
		what += " (in " + tc.String() + ")"
	}
	return runCmd(ctx, tc.Command(ctx, dir, "make", args...), what, log)
}

// run runs a command on the host.
func run(ctx context.Context, dir string, log io.Writer, name string, args ...string) error {
	return runCmd(ctx, Host.Command(ctx, dir, name, args...), name+" "+strings.Join(args, " "), log)
}

// runCmd runs cmd, described as what in errors, with its output to log.
func runCmd(ctx context.Context, cmd *exec.Cmd, what string, log io.Writer) error {
	var out strings.Builder
	w := io.Writer(&out)
	if log != nil {
		w = io.MultiWriter(&out, log)
	}
	cmd.Stdout, cmd.Stderr = w, w
	// make's children (the compiler) go with it when graft is interrupted.
	setpgid(cmd)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%s: %v\n%s", what, err, compilerLines(out.String()))
	}
	return nil
}
