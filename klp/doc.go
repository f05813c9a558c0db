// Package klp owns the livepatch module format: what a livepatch module
// carries and how it reaches everything else in the kernel
// (Documentation/livepatch/module-elf-format.rst).
//
// It sits after objdiff in graft's data path. Extract takes the changed
// and new functions out of a patched object, with what they need that the
// running kernel cannot give them (string literals, compiler-generated
// constants, dynamic debug descriptors, new variables), and the entries of
// the special sections (__mcount_loc, ORC, __bug_table, __ex_table,
// __jump_table, .altinstructions, .static_call_sites, .return_sites, ...)
// that belong to those functions only. Every other symbol the code refers
// to is reached from the module: exports by normal relocations, the rest
// through an undefined symbol named as the livepatch core's symbol will be,
// ".klp.sym.OBJECT.NAME,SYMPOS". Glue generates the C source of the
// klp_patch that names the functions to replace. After kbuild has linked the
// module, Convert turns those symbols into SHN_LIVEPATCH symbols and moves
// their relocations into .klp.rela.OBJECT.SECTION sections, which kbuild and
// the linker do not keep; Sign appends a module signature.
package klp
