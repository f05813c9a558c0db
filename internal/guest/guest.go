package guest

import "os"

// IsInit reports whether this process is the init of a graft VM.
func IsInit() bool { return os.Getpid() == 1 }

// Main runs the guest init.
func Main() {}
