package klp

import (
	"errors"
	"fmt"
)

var (
	// ErrUnsupported means the object holds something a livepatch module
	// cannot carry; the wrapping error says what and why.
	ErrUnsupported = errors.New("cannot be carried by a livepatch")
	// ErrLateReference means the new code has an entry in a special
	// section that the module loader reads when the livepatch loads (a
	// static key's jump entry) and that refers to a symbol of a module,
	// which the livepatch core resolves only when that module loads. It
	// matches ErrUnsupported too.
	ErrLateReference = fmt.Errorf("%w: module symbol in a special section", ErrUnsupported)
	// ErrNoCounterpart is what a Resolver returns for a local data object
	// of the patched object that it cannot match with exactly one of the
	// running kernel's (several static locals of one name in one
	// function, as ratelimit states and netlink messages are): Extract
	// then carries a copy of it, with a warning when it is writable.
	ErrNoCounterpart = errors.New("no single counterpart in the running kernel")
	// ErrNotLinked means Convert got a file that is not a linked module.
	ErrNotLinked = errors.New("not a linked kernel module")
)
