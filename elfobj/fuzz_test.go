package elfobj

import (
	"bytes"
	"testing"
)

// FuzzRead feeds arbitrary bytes to Read: it must return an error or a
// model that writes and reads back, never panic. Seeds are in
// testdata/fuzz/FuzzRead (small objects, truncated and garbled ones).
func FuzzRead(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		obj, err := Read(bytes.NewReader(data))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := obj.Write(&out); err != nil {
			return
		}
		if _, err := Read(bytes.NewReader(out.Bytes())); err != nil {
			t.Fatalf("a written model does not read back: %v", err)
		}
	})
}
