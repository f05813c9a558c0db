package build

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/graft-live/graft/klp"
)

// Severity of a finding.
type Severity string

// Severities.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Finding is something about the change that matters for a running
// kernel: an error stops the build, a warning is reported.
type Finding struct {
	// ID is a stable short name: "init-changed", "data-changed", ...
	ID       string   `json:"id"`
	Severity Severity `json:"severity"`
	// Where is the object, function or file concerned.
	Where string `json:"where"`
	// File and Line are where the source declares what the finding is
	// about, when the debug information says; Source is that line.
	File   string `json:"file,omitempty"`
	Line   int    `json:"line,omitempty"`
	Source string `json:"source,omitempty"`
	// Message says what was found and what it means for a running kernel.
	Message string `json:"message"`
	// Suggestion says what to do instead.
	Suggestion string `json:"suggestion,omitempty"`
}

func (f Finding) String() string {
	s := fmt.Sprintf("%s [%s] %s: %s", f.Severity, f.ID, f.Where, f.Message)
	if f.Suggestion != "" {
		s += " (" + f.Suggestion + ")"
	}
	return s
}

// Function is one function the module replaces.
type Function struct {
	// Object is "vmlinux" or the module that has the function.
	Object string `json:"object"`
	Name   string `json:"name"`
	Sympos int    `json:"sympos"`
	// Unit is the object file it was compiled in: "fs/proc/cmdline.o".
	Unit string `json:"unit"`
	// Reasons say why it is replaced.
	Reasons []string `json:"reasons"`
}

// Unit is one compiled translation unit of the change.
type Unit struct {
	// Path is the object: "fs/proc/cmdline.o".
	Path string `json:"path"`
	// Object is where the unit is linked: "vmlinux" or a module name.
	Object string `json:"object"`
	// Changed says whether objdiff found differences.
	Changed bool `json:"changed"`
	// Carried are the symbols the module carries from it.
	Carried []string `json:"carried,omitempty"`
}

// Report is the outcome of a build; its JSON form is stable.
type Report struct {
	// Module is the livepatch module written, and Name the module name.
	Module string `json:"module"`
	Name   string `json:"name"`
	// Kernel is the target release and Debian version.
	Kernel  string `json:"kernel"`
	Version string `json:"version"`
	// Replace says whether the patch replaces all earlier ones.
	Replace bool `json:"replace"`
	// Signed says whether a signature was appended.
	Signed bool `json:"signed"`
	// Patches are the patch files, in the order applied.
	Patches []string `json:"patches"`
	// Files are the source files the patches change.
	Files []string `json:"files"`
	// HeaderObjects counts the objects compiled because a header changed.
	HeaderObjects int `json:"header_objects,omitempty"`
	// Units are the compiled objects.
	Units []Unit `json:"units"`
	// Functions are the replaced functions.
	Functions []Function `json:"functions"`
	// Relocations are the symbols reached through klp relocations.
	Relocations []klp.Ref `json:"klp_relocations"`
	// Externs are the exported symbols the module links to.
	Externs []string `json:"externs"`
	// Symbols says where the target's symbols came from.
	Symbols []string `json:"symbols"`
	// Findings are errors and warnings; Notes are everything else worth
	// knowing.
	Findings []Finding `json:"findings"`
	Notes    []string  `json:"notes"`
	// Stages are the wall times of the build's stages, in order.
	Stages []Stage `json:"stages"`
}

// Stage is the wall time of one stage of a build.
type Stage struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

func (r *Report) stage(name string, start time.Time) {
	r.Stages = append(r.Stages, Stage{Name: name, Seconds: time.Since(start).Seconds()})
}

func (r *Report) finding(f Finding) {
	r.Findings = append(r.Findings, f)
}

// errors returns the findings of error severity.
func (r *Report) errors() []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Severity == SeverityError {
			out = append(out, f)
		}
	}
	return out
}

func (r *Report) sort() {
	sort.Slice(r.Functions, func(i, j int) bool {
		a, b := r.Functions[i], r.Functions[j]
		if a.Object != b.Object {
			return a.Object == "vmlinux" || b.Object != "vmlinux" && a.Object < b.Object
		}
		return a.Name < b.Name
	})
	sort.Slice(r.Relocations, func(i, j int) bool { return r.Relocations[i].SymbolName() < r.Relocations[j].SymbolName() })
	sort.Strings(r.Externs)
	sort.SliceStable(r.Findings, func(i, j int) bool { return r.Findings[i].Severity < r.Findings[j].Severity })
}

// WriteFindings writes one block per finding, for a code review: the
// severity, id and place, the source line it is about, what it means and
// what to do.
func (r *Report) WriteFindings(w io.Writer) {
	for _, f := range r.Findings {
		where := f.Where
		if f.File != "" {
			where = fmt.Sprintf("%s:%d: %s", f.File, f.Line, f.Where)
		}
		fmt.Fprintf(w, "%s [%s] %s\n", f.Severity, f.ID, where)
		if f.Source != "" {
			fmt.Fprintf(w, "    %5d | %s\n", f.Line, f.Source)
		}
		fmt.Fprintf(w, "    %s\n", f.Message)
		if f.Suggestion != "" {
			fmt.Fprintf(w, "    suggestion: %s\n", f.Suggestion)
		}
	}
}

// Summary is the count of findings: "2 errors, 1 warning".
func (r *Report) Summary() string {
	var errs, warns int
	for _, f := range r.Findings {
		if f.Severity == SeverityError {
			errs++
		} else {
			warns++
		}
	}
	plural := func(n int, s string) string {
		if n == 1 {
			return fmt.Sprintf("%d %s", n, s)
		}
		return fmt.Sprintf("%d %ss", n, s)
	}
	return plural(errs, "error") + ", " + plural(warns, "warning")
}

// WriteText writes the report for a human: what was built, each replaced
// function with its reasons, each klp relocation, and the findings.
func (r *Report) WriteText(w io.Writer) error {
	if r.Module != "" {
		fmt.Fprintf(w, "%s: livepatch %s for %s", r.Module, r.Name, r.Kernel)
		if r.Replace {
			fmt.Fprint(w, " (replaces earlier patches)")
		}
		fmt.Fprintln(w)
	}
	for _, f := range r.Functions {
		pos := ""
		if f.Sympos > 0 {
			pos = fmt.Sprintf(",%d", f.Sympos)
		}
		fmt.Fprintf(w, "  replaces %s:%s%s  (%s: %s)\n", f.Object, f.Name, pos, f.Unit, strings.Join(f.Reasons, "; "))
	}
	for _, ref := range r.Relocations {
		fmt.Fprintf(w, "  klp relocation %s:%s,%d\n", ref.Object, ref.Name, ref.Sympos)
	}
	if r.HeaderObjects > 0 {
		fmt.Fprintf(w, "  %d object(s) compiled because a header changed\n", r.HeaderObjects)
	}
	r.WriteFindings(w)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	if r.Module == "" {
		return nil
	}
	var total float64
	var parts []string
	for _, s := range r.Stages {
		total += s.Seconds
		parts = append(parts, fmt.Sprintf("%s %.1fs", s.Name, s.Seconds))
	}
	if len(parts) > 0 {
		_, err := fmt.Fprintf(w, "built in %.1fs: %s\n", total, strings.Join(parts, ", "))
		return err
	}
	return nil
}
