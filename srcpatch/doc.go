// Package srcpatch applies source patches to a kernel tree: unified diffs as
// `git diff`, `git format-patch` and `diff -u` write them.
//
// It is the first step of graft build: the patches are applied in order, in
// memory, to the files of the pristine source, and the result is the set of
// changed files (old and new contents) that decides which objects to
// compile. Nothing is written to the tree here.
//
// Hunks apply where their context and removed lines match, at the line the
// hunk header names or, as patch(1) does, at the nearest line offset where
// they match (a fix taken from upstream rarely has the distribution's line
// numbers). Each offset is reported. Path prefixes (a/, b/, or a directory
// such as linux-6.1/) are stripped as needed, like patch -p, by finding the
// strip level at which the files exist in the tree.
package srcpatch
