// Package build turns source patches for a kernel into a livepatch module:
// graft build.
//
// It joins the stages of graft's data path, each of which lives in its own
// package: srcpatch applies the patches to the target's pristine source in
// memory; kbuild compiles every object the change touches twice, original
// and patched, with the target's exact flags, in two prepared trees at once;
// objdiff says which functions and data changed and why; this package
// decides what the module carries (changed and new functions, new data, the
// callers of changed functions that ftrace cannot redirect) and refuses
// what a livepatch cannot do, each refusal a Finding with an id, a reason
// and a suggestion; klp extracts the code and writes the glue; kbuild links
// the module and klp converts it. The Report says what was replaced, how
// each symbol outside the module is reached, and what was noticed.
package build
