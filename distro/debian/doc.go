// Package debian fetches the artifacts of Debian kernels into a local cache:
// the image (vmlinuz, config, modules), the headers that out-of-tree modules
// build against (Module.symvers), the source, and on demand the debug
// symbols (the real System.map and vmlinux).
//
// It sits at the start of graft's data path: build, check and the VM harness
// all name a target kernel by its ABI release (uname -r) and get the files
// from here. Packages come from the machine's apt sources through
// `apt-get download` and are unpacked with `dpkg-deb -x`; nothing is
// installed into the system. The cache is keyed by exact package version,
// survives interrupted downloads (a part appears only once it is complete),
// and is safe for several processes at once (one flock per entry).
package debian
