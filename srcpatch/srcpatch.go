package srcpatch

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/bluekeyes/go-gitdiff/gitdiff"
)

var (
	// ErrNotAPatch means the input holds no unified diff.
	ErrNotAPatch = errors.New("not a patch: no unified diff found")
	// ErrDoesNotApply matches a *HunkError and other failures to apply a
	// patch to the tree (a missing file, a file that exists already).
	ErrDoesNotApply = errors.New("patch does not apply")
	// ErrUnsupported means the patch holds something graft cannot apply to
	// source, such as a binary change.
	ErrUnsupported = errors.New("unsupported patch")
)

// Patch is one parsed patch file.
type Patch struct {
	// Name is where the patch came from, for messages.
	Name  string
	files []*gitdiff.File
}

// Parse reads one patch; name is used in messages.
func Parse(r io.Reader, name string) (*Patch, error) {
	files, _, err := gitdiff.Parse(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", name, ErrNotAPatch, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: %w", name, ErrNotAPatch)
	}
	for _, f := range files {
		if f.IsBinary {
			return nil, fmt.Errorf("%s: %w: binary change to %s", name, ErrUnsupported, firstNonEmpty(f.NewName, f.OldName))
		}
	}
	return &Patch{Name: name, files: files}, nil
}

// ParseFile reads the patch file at path.
func ParseFile(path string) (*Patch, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f, path)
}

// Change is the net change of one file after all patches.
type Change struct {
	// Path is relative to the tree: "fs/proc/cmdline.c".
	Path string `json:"path"`
	// Old is the pristine contents, nil for a new file; New is the patched
	// contents, nil for a removed file.
	Old []byte `json:"-"`
	New []byte `json:"-"`
}

// Result is what a set of patches does to a tree.
type Result struct {
	// Changes are the changed files, sorted by path; a file that the
	// patches change and change back is not among them.
	Changes []Change `json:"changes"`
	// Notes say where hunks applied with an offset or needed a path prefix
	// stripped.
	Notes []string `json:"notes,omitempty"`
}

// Apply applies patches in order to the files of the tree at root, in
// memory; root is only read.
func Apply(root string, patches ...*Patch) (*Result, error) {
	return ApplyFS(os.DirFS(root), patches...)
}

// ApplyFS is Apply on a file system.
func ApplyFS(tree fs.FS, patches ...*Patch) (*Result, error) {
	a := &applier{tree: tree, cur: map[string]*[]byte{}, orig: map[string]*[]byte{}}
	for _, p := range patches {
		for _, f := range p.files {
			if err := a.file(p.Name, f); err != nil {
				return nil, err
			}
		}
	}
	return a.result(), nil
}

// applier holds the files as the patches so far left them.
type applier struct {
	tree  fs.FS
	cur   map[string]*[]byte // nil pointer value: the file is gone
	orig  map[string]*[]byte
	notes []string
}

// read returns a file's current contents (nil when it does not exist).
func (a *applier) read(p string) (*[]byte, error) {
	if c, ok := a.cur[p]; ok {
		return c, nil
	}
	b, err := fs.ReadFile(a.tree, p)
	var c *[]byte
	switch {
	case err == nil:
		c = &b
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, err
	}
	a.cur[p], a.orig[p] = c, c
	return c, nil
}

func (a *applier) exists(p string) bool {
	c, err := a.read(p)
	return err == nil && c != nil
}

// resolve strips leading path components from a patch's file name until it
// names a file of the tree (or, for a new file, a directory of it).
func (a *applier) resolve(patchName, name string, isNew bool) (string, error) {
	name = path.Clean(strings.TrimPrefix(name, "/"))
	p := name
	for strip := 0; ; strip++ {
		if !fs.ValidPath(p) {
			return "", fmt.Errorf("%s: %w: file name %q leaves the tree", patchName, ErrDoesNotApply, name)
		}
		if (!isNew && a.exists(p)) || (isNew && a.dirExists(path.Dir(p))) {
			// a/ and b/ are the usual prefixes of diff and git: not worth a note.
			if strip > 1 || strip == 1 && !strings.HasPrefix(name, "a/") && !strings.HasPrefix(name, "b/") {
				a.notes = append(a.notes, fmt.Sprintf("%s: %s is %s in the tree (-p%d)", patchName, name, p, strip))
			}
			return p, nil
		}
		i := strings.IndexByte(p, '/')
		if i < 0 {
			if isNew {
				return "", fmt.Errorf("%s: %w: no directory for the new file %s in the tree", patchName, ErrDoesNotApply, name)
			}
			return "", fmt.Errorf("%s: %w: %s is not in the tree", patchName, ErrDoesNotApply, name)
		}
		p = p[i+1:]
	}
}

func (a *applier) dirExists(d string) bool {
	if d == "." {
		return true
	}
	st, err := fs.Stat(a.tree, d)
	if err == nil && st.IsDir() {
		return true
	}
	// A directory that an earlier patch created.
	for p, c := range a.cur {
		if c != nil && strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

func (a *applier) file(patchName string, f *gitdiff.File) error {
	switch {
	case f.IsCopy:
		return fmt.Errorf("%s: %w: copy of %s to %s", patchName, ErrUnsupported, f.OldName, f.NewName)
	case f.IsNew:
		p, err := a.resolve(patchName, f.NewName, true)
		if err != nil {
			return err
		}
		if a.exists(p) {
			return fmt.Errorf("%s: %w: creates %s, which exists", patchName, ErrDoesNotApply, p)
		}
		out, err := a.hunks(patchName, p, nil, f.TextFragments)
		if err != nil {
			return err
		}
		a.cur[p] = &out
		return nil
	}
	p, err := a.resolve(patchName, f.OldName, false)
	if err != nil {
		return err
	}
	c, err := a.read(p)
	if err != nil {
		return err
	}
	out, err := a.hunks(patchName, p, *c, f.TextFragments)
	if err != nil {
		return err
	}
	switch {
	case f.IsDelete:
		if len(out) != 0 {
			return fmt.Errorf("%s: %w: deletes %s, which has other contents", patchName, ErrDoesNotApply, p)
		}
		a.cur[p] = nil
	case f.IsRename:
		np, err := a.resolve(patchName, f.NewName, true)
		if err != nil {
			return err
		}
		if _, err := a.read(np); err != nil {
			return err
		}
		a.cur[p], a.cur[np] = nil, &out
	default:
		a.cur[p] = &out
	}
	return nil
}

// HunkError is a hunk that matches nowhere in its file.
type HunkError struct {
	Patch string
	File  string
	// Hunk is the 1-based number of the hunk in its file's diff.
	Hunk   int
	Header string
}

func (e *HunkError) Error() string {
	return fmt.Sprintf("%s: hunk #%d (%s) of %s does not apply: its context and removed lines match nowhere in the file", e.Patch, e.Hunk, strings.TrimSpace(e.Header), e.File)
}

// Is makes errors.Is(err, ErrDoesNotApply) true.
func (e *HunkError) Is(target error) bool { return target == ErrDoesNotApply }

// hunks applies a file's hunks in order; each matches at or after the end
// of the previous one.
func (a *applier) hunks(patchName, file string, data []byte, frags []*gitdiff.TextFragment) ([]byte, error) {
	lines := splitLines(data)
	var out []string
	next := 0 // first line not yet copied
	for i, h := range frags {
		var old, repl []string
		for _, l := range h.Lines {
			if l.Old() {
				old = append(old, l.Line)
			}
			if l.New() {
				repl = append(repl, l.Line)
			}
		}
		want := int(h.OldPosition) - 1
		if h.OldLines == 0 {
			want = int(h.OldPosition) // an insertion names the line before it
		}
		at, ok := find(lines, old, want, next)
		if !ok {
			return nil, &HunkError{Patch: patchName, File: file, Hunk: i + 1, Header: h.Header()}
		}
		if at != want {
			a.notes = append(a.notes, fmt.Sprintf("%s: hunk #%d of %s applied at line %d (offset %+d)", patchName, i+1, file, at+1, at-want))
		}
		out = append(out, lines[next:at]...)
		out = append(out, repl...)
		next = at + len(old)
	}
	out = append(out, lines[next:]...)
	return []byte(strings.Join(out, "")), nil
}

// find returns where old matches in lines at or after from, nearest to
// want first.
func find(lines, old []string, want, from int) (int, bool) {
	want = max(min(want, len(lines)), from)
	for d := 0; ; d++ {
		lo, hi := want-d, want+d
		if lo < from && hi+len(old) > len(lines) {
			return 0, false
		}
		if lo >= from && matches(lines, old, lo) {
			return lo, true
		}
		if d > 0 && hi+len(old) <= len(lines) && matches(lines, old, hi) {
			return hi, true
		}
	}
}

func matches(lines, old []string, at int) bool {
	if at < 0 || at+len(old) > len(lines) {
		return false
	}
	for i, l := range old {
		if lines[at+i] != l {
			return false
		}
	}
	return true
}

// splitLines splits data after each newline, keeping the newlines.
func splitLines(data []byte) []string {
	var lines []string
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			lines = append(lines, string(data))
			break
		}
		lines = append(lines, string(data[:i+1]))
		data = data[i+1:]
	}
	return lines
}

func (a *applier) result() *Result {
	r := &Result{Notes: a.notes}
	for p, c := range a.cur {
		o := a.orig[p]
		switch {
		case o == nil && c == nil:
			continue
		case o != nil && c != nil && bytes.Equal(*o, *c):
			continue
		}
		ch := Change{Path: p}
		if o != nil {
			ch.Old = *o
		}
		if c != nil {
			ch.New = *c
		}
		r.Changes = append(r.Changes, ch)
	}
	sort.Slice(r.Changes, func(i, j int) bool { return r.Changes[i].Path < r.Changes[j].Path })
	return r
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
