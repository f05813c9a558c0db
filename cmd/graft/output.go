package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// writeJSON prints v as the one JSON document of a --json command.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// warn prints a warning on stderr, where it stays out of --json output.
func warn(msg string) { fmt.Fprintf(os.Stderr, "graft: warning: %s\n", msg) }
