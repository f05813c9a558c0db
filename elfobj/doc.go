// Package elfobj reads, edits and writes x86-64 ELF64 relocatable objects,
// the .o and .ko files of a kernel build.
//
// It is the bottom of graft's data path: objdiff compares two Files of one
// translation unit, and the livepatch module builder extracts functions into
// a new File, renames symbols and moves relocations into .klp.rela sections
// before writing it out. Go's debug/elf reads ELF but cannot write it; this
// package reads with debug/elf where it can and writes its own.
//
// In the model, relocations point at *Symbol and sections at *Section, so
// symbols can be renamed, sections dropped and relocations moved without
// index bookkeeping: Write assigns every index, lays out the file and
// regenerates .symtab, .strtab and .shstrtab.
package elfobj
