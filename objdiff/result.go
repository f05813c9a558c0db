package objdiff

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
)

// TuneGC lets the heap grow to 5 times the live data between collections,
// unless GOGC is set. Comparing objects allocates many small short-lived
// values; with the default (GOGC=100) the collector, not the comparison,
// limits how much a second CPU helps (measured on fs/proc: 0.65x with two
// CPUs at GOGC=100, 1.28x at GOGC=400, peak RSS 29 and 62 MB).
func TuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
}

// ErrIncompatible means the change cannot be made by a livepatch as it is:
// a data object's size or a symbol's type changed.
var ErrIncompatible = errors.New("change not possible in a livepatch")

// Kind is what an entity is.
type Kind string

// Kinds of entities.
const (
	Function Kind = "function"
	Object   Kind = "object"
)

// Status is how an entity differs.
type Status string

// Statuses.
const (
	Changed Status = "changed"
	New     Status = "new"
	Removed Status = "removed"
	// Unpatchable is a changed function without an ftrace entry: the
	// livepatch core cannot redirect it.
	Unpatchable Status = "unpatchable"
)

// Change is one differing function or data object.
type Change struct {
	// Name is the symbol name without compiler suffixes; static locals are
	// qualified by the function that uses them ("fn::counter").
	Name string `json:"name"`
	// Symbols are the symbols in the patched object (the original's for a
	// removed entity), e.g. ["foo.isra.0", "foo.cold"].
	Symbols []string `json:"symbols"`
	Kind    Kind     `json:"kind"`
	Status  Status   `json:"status"`
	// Reasons say why, for a human.
	Reasons []string `json:"reasons"`
}

// Finding is an error: a difference a livepatch cannot carry.
type Finding struct {
	Symbol  string `json:"symbol"`
	Message string `json:"message"`
}

// Result is the outcome of Compare.
type Result struct {
	Orig    string    `json:"orig"`
	Patched string    `json:"patched"`
	Changes []Change  `json:"changes"`
	Errors  []Finding `json:"errors"`
}

// Err returns an error matching ErrIncompatible when r has findings.
func (r *Result) Err() error {
	if len(r.Errors) == 0 {
		return nil
	}
	var msgs []string
	for _, f := range r.Errors {
		msgs = append(msgs, f.Symbol+": "+f.Message)
	}
	return fmt.Errorf("%w: %s", ErrIncompatible, strings.Join(msgs, "; "))
}

// WriteText writes one line per change and per error.
func (r *Result) WriteText(w io.Writer) error {
	if len(r.Changes) == 0 && len(r.Errors) == 0 {
		_, err := fmt.Fprintf(w, "no changes between %s and %s\n", r.Orig, r.Patched)
		return err
	}
	for _, c := range r.Changes {
		fmt.Fprintf(w, "%-11s %-8s %s: %s\n", c.Status, c.Kind, c.Name, strings.Join(c.Reasons, "; "))
	}
	for _, f := range r.Errors {
		fmt.Fprintf(w, "error       %s: %s\n", f.Symbol, f.Message)
	}
	return nil
}
