// Package kernel is a target kernel: the one kernel that graft builds a
// livepatch for, boots in a VM, or inspects.
//
// It sits at the start of graft's data path. A Spec (a Debian release such
// as 6.1.0-56-amd64, or the running kernel) resolves to a Target whose
// artifacts, fetched into graft's cache by distro/debian, are the kernel
// configuration, the headers with Module.symvers, the source, the image
// with its modules, and the symbols. On top of those files the package
// answers what later stages ask of a kernel:
//
//   - ReadConfig: the .config options (compiler version, features);
//   - ReadExports: which symbols vmlinux and the modules export, and how
//     (Module.symvers), so that a livepatch links to exports normally and
//     reaches everything else through klp relocations;
//   - VmlinuxSymbols and ModuleSymbols: every symbol in the order the
//     livepatch core searches them, grouped by translation unit where the
//     symbols say so (STT_FILE in the -dbg vmlinux), so that a local symbol
//     of one source file gets its sympos (the n-th symbol of that name).
//
// The cache root (CacheDir) is graft's, not Debian's: distro/debian keeps
// its packages below it, and a Target keeps what graft derives from the
// kernel (prepared source trees) in its own directory (Target.Dir).
package kernel
