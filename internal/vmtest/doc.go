// Package vmtest lets a Go test in any package run its body inside a VM of
// the test kernel (package vm): on the host, Run boots the VM and runs the
// test binary there, restricted to the calling test; in the guest, it just
// calls the body.
package vmtest
