package build

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

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
			objs = append(objs, objSpec{Path: strings.TrimSuffix(c.Path, ".c") + ".o"})
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
	deps, err := includers(ctx, b.target.SourceDir, headers)
	if err != nil {
		return nil, err
	}
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
	b.rep.Notes = append(b.rep.Notes, fmt.Sprintf("%s: included by %d C file(s), compiled to find what changed", strings.Join(headers, ", "), len(extra)))
	return append(objs, extra...), nil
}

var includeLine = regexp.MustCompile(`(?m)^[ \t]*#[ \t]*include[ \t]*([<"])([^>"]+)[>"]`)

// includePath is where <...> includes resolve for x86-64 (the -I order of
// kbuild, without the generated directories).
var includePath = []string{"arch/x86/include", "include", "arch/x86/include/uapi", "include/uapi"}

// includers returns the .c files of the source tree that include any of
// headers, directly or through other headers, sorted. It reads the
// #include lines of every C file and header (conditionals are not
// evaluated, so it may list more than the configuration compiles).
func includers(ctx context.Context, root string, headers []string) ([]string, error) {
	incl := map[string][]string{} // header -> files that include it
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
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
		if !strings.HasSuffix(rel, ".c") && !strings.HasSuffix(rel, ".h") {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range includeLine.FindAllSubmatch(data, -1) {
			if h := resolveInclude(root, rel, string(m[1]), string(m[2])); h != "" {
				incl[h] = append(incl[h], rel)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find the files that include %s: %w", strings.Join(headers, ", "), err)
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
	return cs, nil
}

// resolveInclude finds the file an #include names, relative to root.
func resolveInclude(root, from, kind, name string) string {
	exists := func(p string) bool {
		st, err := os.Stat(filepath.Join(root, p))
		return err == nil && !st.IsDir()
	}
	if kind == `"` {
		if p := path.Join(path.Dir(from), name); exists(p) {
			return p
		}
	}
	for _, dir := range includePath {
		if p := path.Join(dir, name); exists(p) {
			return p
		}
	}
	return ""
}

// firstLines returns up to n lines of s.
func firstLines(s string, n int) string {
	sc := bufio.NewScanner(bytes.NewReader([]byte(s)))
	var out []string
	for sc.Scan() && len(out) < n {
		out = append(out, sc.Text())
	}
	return strings.Join(out, "\n")
}
