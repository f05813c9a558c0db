// Package kbuild drives the kernel's own build system for a target kernel.
//
// graft never reimplements kbuild: objects and modules are built with the
// exact flags the target kernel was built with by running its Makefiles.
// BuildModules builds out-of-tree modules (livepatch modules, test fixtures)
// against a headers tree such as the one distro/debian unpacks.
package kbuild
