// Package objdiff decides which functions and data objects differ between
// two compilations of one translation unit, and why.
//
// It sits between compiling and building a livepatch module: graft build
// compiles each changed .c file twice (original and patched, with
// -ffunction-sections -fdata-sections), and Compare returns the changed, new
// and removed functions and objects, each with reasons. The livepatch module
// then carries exactly the changed functions.
//
// Objects are compared symbol by symbol, never by position:
//
//   - Names are correlated modulo compiler suffixes: foo, foo.isra.0,
//     foo.constprop.1, foo.part.0 and foo.cold.0 all belong to foo, so a
//     clone that appears or disappears is a change of foo, and .cold and
//     .part pieces are compared with their parent.
//   - Relocations are compared by what they point at: a reference through a
//     section symbol is resolved to the symbol at that place, a string
//     literal by its text (not its offset in .rodata.str), a static local
//     (counter.3) by its base name and the function that uses it, an
//     anonymous table (a switch's jump table) by its contents.
//   - A function that differs only in the immediate line number passed to a
//     warning or printk helper (__LINE__ moved) is not changed.
//   - A changed function without an ftrace entry (no __fentry__ call, not in
//     __mcount_loc or __patchable_function_entries) is reported as
//     unpatchable; a data object whose size or a symbol whose type changed
//     is an error (Result.Err matches ErrIncompatible).
//
// Entities are described in parallel, one goroutine per CPU.
package objdiff
