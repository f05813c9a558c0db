package kbuild

import "strings"

// maxMessageLines bounds the compiler output an error carries.
const maxMessageLines = 40

// compilerLines picks what a user needs from make's output: the compiler's
// errors with the source lines it quotes under them, and make's own error
// lines; without any, the last lines.
func compilerLines(out string) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	var picked []string
	quoting := false
	for _, l := range lines {
		switch {
		case strings.Contains(l, ": error:") || strings.Contains(l, ": fatal error:") || strings.Contains(l, "undefined reference") ||
			strings.HasPrefix(l, "make") && strings.Contains(l, "***") || strings.Contains(l, "ERROR:"):
			picked = append(picked, l)
			quoting = true
		case quoting && (strings.Contains(l, " | ") || strings.HasPrefix(strings.TrimSpace(l), "|")):
			picked = append(picked, l)
		case strings.Contains(l, ": In function") || strings.Contains(l, ": note:"):
			quoting = false
			picked = append(picked, l)
		default:
			quoting = false
		}
	}
	if len(picked) == 0 {
		picked = lines
	}
	if len(picked) > maxMessageLines {
		picked = picked[len(picked)-maxMessageLines:]
	}
	return strings.Join(picked, "\n")
}
