package build

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/gob"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/graft-live/graft/srcpatch"
)

// objSpec is an object to compile for the change.
type objSpec struct {
	// Path is the object: "fs/proc/cmdline.o".
	Path string
	// Header says it is compiled because a header it includes changed.
	Header bool
}

// notBuilt lists source directories that are not part of the kernel
// binary for x86-64.
func notBuilt(p string) (string, bool) {
	for _, d := range []string{"Documentation/", "tools/", "samples/", "scripts/", "usr/", "LICENSES/", "rust/"} {
		if strings.HasPrefix(p, d) {
			return "not part of the kernel binary", true
		}
	}
	if rest, ok := strings.CutPrefix(p, "arch/"); ok && !strings.HasPrefix(rest, "x86/") {
		return "another architecture", true
	}
	return "", false
}

// objects decides what to compile for the changed files, and records
// findings for changes a livepatch cannot carry.
func (b *builder) objects(ctx context.Context, applied *srcpatch.Result) ([]objSpec, error) {
	var objs []objSpec
	var headers []string
	for _, c := range applied.Changes {
		b.rep.Files = append(b.rep.Files, c.Path)
		if why, ok := notBuilt(c.Path); ok {
			b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("%s: ignored (%s)", c.Path, why))
			continue
		}
		base := path.Base(c.Path)
		switch ext := path.Ext(c.Path); {
		case ext == ".c" && c.New == nil:
			b.rep.finding(Finding{ID: "file-removed", Severity: SeverityError, Where: c.Path,
				Message:    "the patch removes a source file: its code stays in the running kernel",
				Suggestion: "keep the file and change its functions instead"})
		case ext == ".c" && c.Old == nil:
			b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("%s: new file, not compiled (no Makefile of the running kernel builds it)", c.Path))
		case ext == ".c":
			// A file that another C file of its directory includes (the
			// scheduler's build_policy.c includes rt.c) is compiled as part
			// of that one, and not alone.
			by, err := includedBy(b.target.SourceDir, c.Path)
			if err != nil {
				return nil, err
			}
			objs = append(objs, objSpec{Path: strings.TrimSuffix(c.Path, ".c") + ".o", Header: len(by) > 0})
			for _, f := range by {
				b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("%s is included by %s, which is compiled too", c.Path, f))
				objs = append(objs, objSpec{Path: strings.TrimSuffix(f, ".c") + ".o", Header: true})
			}
		case ext == ".h":
			headers = append(headers, c.Path)
		case ext == ".S" || ext == ".s":
			b.rep.finding(Finding{ID: "asm-changed", Severity: SeverityError, Where: c.Path,
				Message:    "assembly code changed: its functions have no ftrace entry and cannot be redirected",
				Suggestion: "change the C code that calls it, or wait for a reboot"})
		case base == "Makefile" || base == "Kbuild" || strings.HasPrefix(base, "Kconfig") || ext == ".lds":
			b.rep.finding(Finding{ID: "build-changed", Severity: SeverityError, Where: c.Path,
				Message:    "the build itself changed (what is compiled, how, or with which options); a livepatch replaces functions of the running kernel only",
				Suggestion: "drop the build change from the patch if the code does not need it"})
		default:
			b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("%s: ignored (not C source)", c.Path))
		}
	}
	if len(headers) == 0 {
		return objs, nil
	}
	b.headers = headers
	graph, err := includeGraphFor(ctx, b.target.SourceDir, filepath.Join(b.target.Dir, "include-graph.gob.gz"))
	if err != nil {
		return nil, err
	}
	deps := graph.includers(headers)
	have := map[string]bool{}
	for _, o := range objs {
		have[o.Path] = true
	}
	var extra []objSpec
	for _, c := range deps {
		o := strings.TrimSuffix(c, ".c") + ".o"
		if _, skip := notBuilt(c); skip || have[o] {
			continue
		}
		extra = append(extra, objSpec{Path: o, Header: true})
	}
	if len(extra) > b.opts.MaxObjects {
		b.rep.finding(Finding{ID: "header-change", Severity: SeverityError, Where: strings.Join(headers, ", "),
			Message:    fmt.Sprintf("the changed header(s) are included by %d C files, more than %d to compile", len(extra), b.opts.MaxObjects),
			Suggestion: "move the change into the C files that need it, or raise --max-objects"})
		return objs, nil
	}
	b.rep.HeaderObjects = len(extra)
	return append(objs, extra...), nil
}

// includedBy returns the C files in the directory of file that #include
// it by name.
func includedBy(root, file string) ([]string, error) {
	dir := path.Dir(file)
	entries, err := os.ReadDir(filepath.Join(root, dir))
	if err != nil {
		return nil, err
	}
	var out []string
	var buf []byte
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".c") || path.Join(dir, name) == file {
			continue
		}
		if buf, err = readInto(buf[:0], filepath.Join(root, dir, name)); err != nil {
			return nil, err
		}
		for _, inc := range includeNames(buf) {
			if inc.quoted && inc.name == path.Base(file) {
				out = append(out, path.Join(dir, name))
				break
			}
		}
	}
	return out, nil
}

// includePath is where <...> includes resolve for x86-64 (the -I order of
// kbuild, without the generated directories).
var includePath = []string{"arch/x86/include", "include", "arch/x86/include/uapi", "include/uapi"}

// includeGraph is which files each C file and header of a source tree
// includes: Files[i] includes Files[j] for every j in Edges[i].
type includeGraph struct {
	Files []string
	Edges [][]int32
}

// includeGraphFor reads the include graph of a source tree, from cache
// when it was read before: the pristine source never changes.
func includeGraphFor(ctx context.Context, root, cache string) (*includeGraph, error) {
	if f, err := os.Open(cache); err == nil {
		defer f.Close()
		if zr, err := gzip.NewReader(f); err == nil {
			var g includeGraph
			if gob.NewDecoder(zr).Decode(&g) == nil && len(g.Files) == len(g.Edges) {
				return &g, nil
			}
		}
	}
	g, err := scanIncludes(ctx, root)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := gob.NewEncoder(zw).Encode(g); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	// A cache that cannot be written only costs the next build time.
	_ = writeFileAtomic(cache, buf.Bytes())
	return g, nil
}

// scanIncludes reads the #include lines of every C file and header of
// root, in parallel.
func scanIncludes(ctx context.Context, root string) (*includeGraph, error) {
	g := &includeGraph{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if _, skip := notBuilt(rel + "/"); skip || strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(rel, ".c") || strings.HasSuffix(rel, ".h") {
			g.Files = append(g.Files, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the includes of %s: %w", root, err)
	}
	index := make(map[string]int32, len(g.Files))
	for i, f := range g.Files {
		index[f] = int32(i)
	}
	res := newIncludeResolver(root)
	g.Edges = make([][]int32, len(g.Files))
	var eg errgroup.Group
	workers := runtime.NumCPU()
	for w := 0; w < workers; w++ {
		eg.Go(func() error {
			var buf []byte
			for i := w; i < len(g.Files); i += workers {
				if err := ctx.Err(); err != nil {
					return err
				}
				var err error
				if buf, err = readInto(buf[:0], filepath.Join(root, g.Files[i])); err != nil {
					return err
				}
				for _, inc := range includeNames(buf) {
					if h := res.resolve(g.Files[i], inc.quoted, inc.name); h != "" {
						if j, ok := index[h]; ok {
							g.Edges[i] = append(g.Edges[i], j)
						}
					}
				}
			}
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		return nil, fmt.Errorf("read the includes of %s: %w", root, err)
	}
	return g, nil
}

// includers returns the .c files of the graph that include any of
// headers, directly or through other headers, sorted. Conditionals are not
// evaluated, so it may list more than the configuration compiles.
func (g *includeGraph) includers(headers []string) []string {
	incl := map[string][]string{} // header -> files that include it
	for i, js := range g.Edges {
		for _, j := range js {
			incl[g.Files[j]] = append(incl[g.Files[j]], g.Files[i])
		}
	}
	seen := map[string]bool{}
	queue := append([]string(nil), headers...)
	var cs []string
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		for _, f := range incl[h] {
			if seen[f] {
				continue
			}
			seen[f] = true
			if strings.HasSuffix(f, ".c") {
				cs = append(cs, f)
			}
			queue = append(queue, f)
		}
	}
	sort.Strings(cs)
	return cs
}

func readInto(buf []byte, name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return buf, err
	}
	defer f.Close()
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

type include struct {
	name   string
	quoted bool
}

// includeNames finds the #include lines of a C file.
func includeNames(data []byte) []include {
	var out []include
	for off := 0; ; {
		i := bytes.Index(data[off:], []byte("include"))
		if i < 0 {
			return out
		}
		at := off + i
		off = at + len("include")
		// Only '#' and blanks may come before it on its line.
		j := at - 1
		for j >= 0 && (data[j] == ' ' || data[j] == '\t') {
			j--
		}
		if j < 0 || data[j] != '#' {
			continue
		}
		for j--; j >= 0 && (data[j] == ' ' || data[j] == '\t'); j-- {
		}
		if j >= 0 && data[j] != '\n' {
			continue
		}
		k := off
		for k < len(data) && (data[k] == ' ' || data[k] == '\t') {
			k++
		}
		if k >= len(data) || data[k] != '<' && data[k] != '"' {
			continue
		}
		closer := byte('>')
		if data[k] == '"' {
			closer = '"'
		}
		end := bytes.IndexByte(data[k+1:], closer)
		nl := bytes.IndexByte(data[k+1:], '\n')
		if end < 0 || nl >= 0 && nl < end {
			continue
		}
		out = append(out, include{name: string(data[k+1 : k+1+end]), quoted: closer == '"'})
	}
}

// includeResolver finds the file an #include names, relative to root,
// remembering what it looked up.
type includeResolver struct {
	root string
	mu   sync.Mutex
	seen map[string]bool
}

func newIncludeResolver(root string) *includeResolver {
	return &includeResolver{root: root, seen: map[string]bool{}}
}

func (r *includeResolver) exists(p string) bool {
	r.mu.Lock()
	v, ok := r.seen[p]
	r.mu.Unlock()
	if ok {
		return v
	}
	st, err := os.Stat(filepath.Join(r.root, p))
	v = err == nil && !st.IsDir()
	r.mu.Lock()
	r.seen[p] = v
	r.mu.Unlock()
	return v
}

func (r *includeResolver) resolve(from string, quoted bool, name string) string {
	if quoted {
		if p := path.Join(path.Dir(from), name); r.exists(p) {
			return p
		}
	}
	for _, dir := range includePath {
		if p := path.Join(dir, name); r.exists(p) {
			return p
		}
	}
	return ""
}
