// Package guest is the init process of a graft VM, the guest side of
// package vm.
//
// vm.Exec builds an initramfs whose /init is the graft binary itself. When
// graft starts as PID 1 and finds ConfigPath, cmd/graft calls Main instead of
// the CLI (IsInit says when): it mounts the pseudo file systems, loads the
// Config's kernel modules, runs the one command described by the Config (or
// a shell on the console), reports the command's exit status to the host and
// powers the machine off.
//
// The guest talks to the host over the four legacy serial ports, each a
// separate stream so that kernel messages never mix with the command's
// output:
//
//	ttyS0  console: kernel log, interactive shell
//	ttyS1  the command's stdout
//	ttyS2  the command's stderr
//	ttyS3  control: one line "exit N" or "error MESSAGE"
//
// The format of the control line is shared with the host side through
// FormatExit, FormatError and ParseControl.
package guest
