package vm

import (
	"bytes"
	"strings"
	"sync"
)

// LineWriter is a writer for Config.Stdout, Stderr or Console that calls
// Line with each complete line written to it, without the newline and a
// carriage return before it (serial ports end lines with "\r\n"). It is
// safe for concurrent use; Flush passes on a last line without a newline.
type LineWriter struct {
	Line func(string)
	mu   sync.Mutex
	buf  []byte
}

func (l *LineWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.Line(strings.TrimSuffix(string(l.buf[:i]), "\r"))
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

// Flush passes on a last line without a newline.
func (l *LineWriter) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.Line(strings.TrimSuffix(string(l.buf), "\r"))
		l.buf = nil
	}
}
