// Package kmod reads kernel module files (.ko): their modinfo (name,
// vermagic, livepatch flag, dependencies, every key), whether a signature
// is appended, and enough of the ELF structure to refuse a truncated or
// corrupted file before the kernel sees it.
//
// It sits at the end of graft's data path, where modules leave graft for
// the kernel: livepatch checks a module before loading it, store before
// installing it, vm --module resolves dependencies with it. A Module is
// parsed from bytes, so that the bytes checked, hashed and loaded can be
// the same ones (Open keeps the file open for that).
package kmod
