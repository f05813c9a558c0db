package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Outcomes of a patch.
const (
	outBuilt       = "built" // built, not loaded yet
	outLoaded      = "loaded"
	outLoadFailure = "load-failure"
	outOops        = "oops"
	outRefused     = "refused"
	outNotAlone    = "not-alone"
	outError       = "error"
	outNotBuilt    = "not-built"
)

// result is what became of one patch; its JSON form is one line of the
// results file.
type result struct {
	File    string `json:"file"`
	Version string `json:"graft_version"`
	Outcome string `json:"outcome"`
	// Finding is the id of the finding a refusal names (several joined by
	// commas).
	Finding string `json:"finding,omitempty"`
	// Error is the error of a failed build or load, or the kernel's
	// complaint.
	Error        string  `json:"error,omitempty"`
	BuildSeconds float64 `json:"build_seconds"`
	// Module is the built livepatch module; Objects are the kernel objects
	// it patches (vmlinux or modules).
	Module  string   `json:"module,omitempty"`
	Objects []string `json:"objects,omitempty"`
}

// results is the results file: every finished patch, the last line of a
// file winning.
type results struct {
	f       *os.File
	version string
	byFile  map[string]result
}

// openResults reads the results file and opens it for appending. Results of
// another graft version are dropped, unless keepStale, which keeps them
// except errors and load failures (the outcomes a fix changes).
func openResults(path, version string, keepStale bool) (*results, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	r := &results{version: version, byFile: map[string]result{}}
	if b, err := os.ReadFile(path); err == nil {
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var x result
			if json.Unmarshal(sc.Bytes(), &x) != nil {
				continue // a line cut short when a run was killed
			}
			stale := x.Version != version
			if stale && (!keepStale || x.Outcome == outError || x.Outcome == outLoadFailure) {
				delete(r.byFile, x.File)
				continue
			}
			r.byFile[x.File] = x
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	r.f = f
	return r, nil
}

func (r *results) get(file string) (result, bool) {
	x, ok := r.byFile[file]
	return x, ok
}

// put records a result, on disk first.
func (r *results) put(x result) error {
	x.Version = r.version
	b, err := json.Marshal(x)
	if err != nil {
		return err
	}
	if _, err := r.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write results: %w", err)
	}
	r.byFile[x.File] = x
	return nil
}

func (r *results) close() { r.f.Close() }

// summary counts the outcomes of the rows.
type summary struct {
	patches, built, refused, notAlone, errors        int
	loaded, loadFailures, oopses, notBuilt, unloaded int
	findings                                         map[string]int
	medianBuild                                      float64
}

func summarize(rows []result) summary {
	s := summary{findings: map[string]int{}}
	var secs []float64
	for _, r := range rows {
		if r.Outcome == outNotBuilt {
			s.notBuilt++
			continue
		}
		s.patches++
		switch r.Outcome {
		case outBuilt, outLoaded, outLoadFailure, outOops:
			s.built++
			secs = append(secs, r.BuildSeconds)
		case outRefused:
			s.refused++
			for _, id := range strings.Split(r.Finding, ",") {
				s.findings[id]++
			}
		case outNotAlone:
			s.notAlone++
		default:
			s.errors++
		}
		switch r.Outcome {
		case outBuilt:
			s.unloaded++
		case outLoaded:
			s.loaded++
		case outLoadFailure:
			s.loadFailures++
		case outOops:
			s.oopses++
		}
	}
	sort.Float64s(secs)
	if n := len(secs); n > 0 {
		s.medianBuild = secs[n/2]
		if n%2 == 0 {
			s.medianBuild = (secs[n/2-1] + secs[n/2]) / 2
		}
	}
	return s
}

// graftVersion is the hash of graft's Go sources (tests and benchmarks
// left out) and go.sum: a change of graft reruns the corpus.
func graftVersion() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	var files []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && rel != "." || rel == "bench" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") || rel == "go.sum") {
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}

// moduleRoot finds graft's source tree: the directory of go.mod at or
// above the working directory.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/graft-live/graft\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("run corpus from graft's source tree (no go.mod of graft above the working directory)")
		}
		dir = parent
	}
}
