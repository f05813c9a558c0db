package main

import (
	"encoding/json"
	"io"
)

// writeJSON prints v as the one JSON document of a --json command.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
