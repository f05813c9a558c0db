// Package kbuild drives the kernel's own build system for a target kernel.
//
// graft never reimplements kbuild: objects and modules are built with the
// exact flags the target kernel was built with by running its Makefiles.
// BuildModules builds out-of-tree modules (livepatch modules, test fixtures)
// against a headers tree such as the one distro/debian unpacks. Prepare
// configures a copy of the kernel source for the target once, and
// CompileObject and CompilePair compile single objects from it, with one
// section per function and data object, for objdiff.
package kbuild
