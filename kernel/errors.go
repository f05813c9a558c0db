package kernel

import "errors"

var (
	// ErrNoSymbols means the target's symbols are not available: neither the
	// -dbg vmlinux nor, for the running kernel, a readable /proc/kallsyms.
	ErrNoSymbols = errors.New("no symbols for the target kernel (fetch them with 'graft kernel fetch --symbols')")
	// ErrSymbolNotFound means a symbol that a livepatch refers to is not in
	// the target's symbol table.
	ErrSymbolNotFound = errors.New("symbol not found in the target kernel")
	// ErrAmbiguous means a local symbol's name occurs several times in the
	// target and the occurrence of one translation unit could not be told
	// apart from the others.
	ErrAmbiguous = errors.New("ambiguous symbol in the target kernel")
	// ErrNoModule means the target has no module of that name.
	ErrNoModule = errors.New("no such module in the target kernel")
)
