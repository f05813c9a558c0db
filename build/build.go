package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/graft-live/graft/kbuild"
	"github.com/graft-live/graft/kernel"
	"github.com/graft-live/graft/srcpatch"
)

// Options tune Build.
type Options struct {
	// Patches are the patch files, applied in order.
	Patches []string
	// Kernel is the target.
	Kernel kernel.Spec
	// Output is the module file to write; "" means NAME.ko in the current
	// directory.
	Output string
	// Name is the module's file name ("livepatch-fix"); "" derives it from
	// the first patch's file name.
	Name string
	// NoReplace builds a patch that stacks on earlier ones instead of
	// replacing them (atomic replace is the default).
	NoReplace bool
	// SignKey and SignCert sign the module (PEM files; SignCert may be
	// empty when SignKey holds the certificate too).
	SignKey, SignCert string
	// AllowCompilerMismatch builds with a compiler other than the one that
	// built the kernel.
	AllowCompilerMismatch bool
	// Allow lists finding ids that do not stop the build.
	Allow []string
	// MaxObjects bounds how many objects a header change may compile
	// (0 = DefaultMaxObjects).
	MaxObjects int
	// Cache is graft's cache (nil = the default one).
	Cache *kernel.Cache
	// Log receives the output of kbuild (nil = discarded).
	Log io.Writer
	// CheckOnly stops before the module is linked: the findings of
	// graft check, without a module.
	CheckOnly bool
	// Progress receives the name of each stage as it starts (may be nil),
	// and Fetch reports downloads.
	Progress func(stage string)
	Fetch    kernel.Progress
}

// DefaultMaxObjects is how many objects a header change may compile unless
// Options.MaxObjects says otherwise.
const DefaultMaxObjects = 200

// moduleName is what the kernel accepts as a module name (MODULE_NAME_LEN
// is 56 with the NUL).
var moduleName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,55}$`)

func (o *Options) check() error {
	if len(o.Patches) == 0 {
		return fmt.Errorf("%w: no patch to build", ErrBadInput)
	}
	if o.Name == "" {
		base := filepath.Base(o.Patches[0])
		base = strings.TrimSuffix(strings.TrimSuffix(base, filepath.Ext(base)), ".diff")
		o.Name = "livepatch-" + strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
				return r
			}
			return '_'
		}, base)
		if len(o.Name) > 55 {
			o.Name = o.Name[:55]
		}
	}
	if !moduleName.MatchString(o.Name) {
		return fmt.Errorf("%w: module name %q: use letters, digits, '_' and '-', at most 55", ErrBadInput, o.Name)
	}
	if o.Output == "" && !o.CheckOnly {
		o.Output = o.Name + ".ko"
	}
	if st, err := os.Stat(o.Output); o.Output != "" && err == nil && st.IsDir() {
		return fmt.Errorf("%w: output %s is a directory", ErrBadInput, o.Output)
	}
	if o.SignKey == "" && o.SignCert != "" {
		return fmt.Errorf("%w: signing needs a private key", ErrBadInput)
	}
	if o.MaxObjects <= 0 {
		o.MaxObjects = DefaultMaxObjects
	}
	return nil
}

func (o *Options) progress(stage string) {
	if o.Progress != nil {
		o.Progress(stage)
	}
}

func (o *Options) allowed(id string) bool {
	for _, a := range o.Allow {
		if a == id {
			return true
		}
	}
	return false
}

// Build turns the patches into a livepatch module for the target kernel
// and writes it to Options.Output, with the report beside it as OUT.json.
// It returns the report also when it refuses the change (a *RefusedError)
// or finds nothing to change (ErrNoChanges). Nothing is left at Output
// unless the build succeeded.
func Build(ctx context.Context, opts Options) (*Report, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	b := &builder{opts: &opts, rep: &Report{Name: kernel.ModuleName(opts.Name), Replace: !opts.NoReplace, Patches: opts.Patches}}
	err := b.run(ctx)
	if b.work != "" {
		os.RemoveAll(b.work)
	}
	b.rep.sort()
	return b.rep, err
}

// builder is one run of Build.
type builder struct {
	opts   *Options
	rep    *Report
	cache  *kernel.Cache
	target *kernel.Target
	tc     *kbuild.Toolchain
	work   string
	// syms are the target's symbols, read as units need them.
	syms *symbols
	// patched holds the files the patches change, as patched.
	patched map[string][]byte
	// headers are the changed headers.
	headers []string
}

func (b *builder) run(ctx context.Context) error {
	start := time.Now()
	b.opts.progress("parse")
	var patches []*srcpatch.Patch
	for _, p := range b.opts.Patches {
		pp, err := srcpatch.ParseFile(p)
		if err != nil {
			return err
		}
		patches = append(patches, pp)
	}
	b.opts.progress("fetch")
	if err := b.resolve(ctx); err != nil {
		return err
	}
	b.rep.stage("fetch", start)

	start = time.Now()
	b.opts.progress("apply")
	applied, err := srcpatch.Apply(b.target.SourceDir, patches...)
	if err != nil {
		return err
	}
	b.rep.Notes = append(b.rep.Notes, applied.Notes...)
	b.patched = map[string][]byte{}
	for _, c := range applied.Changes {
		b.patched[c.Path] = c.New
	}
	objs, err := b.objects(ctx, applied)
	if err != nil {
		return err
	}
	b.rep.stage("apply", start)
	if len(objs) == 0 {
		if err := b.refuse(); err != nil {
			return err
		}
		return fmt.Errorf("%w: the patches change no C file that the kernel is built from", ErrNoChanges)
	}

	work, err := os.MkdirTemp(b.target.Dir, ".build-")
	if err != nil {
		return err
	}
	b.work = work

	start = time.Now()
	b.opts.progress("compile")
	pairs, err := b.compile(ctx, applied, objs)
	if err != nil {
		return err
	}
	b.rep.stage("compile", start)

	start = time.Now()
	b.opts.progress("diff")
	units, err := b.diff(ctx, pairs)
	if err != nil {
		return err
	}
	b.rep.stage("diff", start)
	if len(units) == 0 {
		if err := b.refuse(); err != nil {
			return err
		}
		return ErrNoChanges
	}

	start = time.Now()
	b.opts.progress("extract")
	mod, err := b.extract(ctx, units)
	if err != nil {
		return err
	}
	b.rep.stage("extract", start)
	// Every finding is known now: all of them are reported at once.
	if err := b.refuse(); err != nil {
		return err
	}
	if b.opts.CheckOnly {
		return nil
	}
	return b.link(ctx, mod)
}

// resolve finds the target kernel and fetches what a build needs.
func (b *builder) resolve(ctx context.Context) error {
	c := b.opts.Cache
	if c == nil {
		var err error
		if c, err = kernel.OpenCache(""); err != nil {
			return err
		}
	}
	b.cache = c
	t, err := c.Resolve(ctx, b.opts.Kernel, kernel.Image|kernel.Headers|kernel.Source, b.opts.Fetch)
	if err != nil {
		return err
	}
	b.target = t
	b.rep.Kernel, b.rep.Version = t.Release, t.Version
	b.opts.progress("toolchain")
	tc, err := c.Toolchain(ctx, t, b.opts.Log)
	switch {
	case errors.Is(err, kbuild.ErrCompilerMismatch) && b.opts.AllowCompilerMismatch:
		b.rep.finding(Finding{ID: "compiler-mismatch", Severity: SeverityWarning, Where: t.Release, Message: err.Error(),
			Suggestion: "build with the compiler that built the kernel"})
		tc = kbuild.Host.WithCompiler(t.HeadersDir)
	case errors.Is(err, kbuild.ErrCompilerMismatch):
		return fmt.Errorf("%w (--allow-compiler-mismatch builds anyway)", err)
	case err != nil:
		return err
	}
	b.tc = tc
	if !tc.OnHost() {
		b.rep.Notes = append(b.rep.Notes, "kbuild ran in "+tc.String()+", which has the compiler that built the kernel")
	}
	return nil
}

// refuse stops the build when there are error findings that were not
// allowed; allowed ones become warnings that say so.
func (b *builder) refuse() error {
	for i, f := range b.rep.Findings {
		if f.Severity == SeverityError && b.opts.allowed(f.ID) {
			b.rep.Findings[i].Severity = SeverityWarning
			b.rep.Findings[i].Message += " (allowed with --allow " + f.ID + ")"
		}
	}
	if errs := b.rep.errors(); len(errs) > 0 {
		return &RefusedError{Findings: errs}
	}
	return nil
}
