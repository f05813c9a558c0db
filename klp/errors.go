package klp

import "errors"

var (
	// ErrUnsupported means the object holds something a livepatch module
	// cannot carry; the wrapping error says what and why.
	ErrUnsupported = errors.New("cannot be carried by a livepatch")
	// ErrNotLinked means Convert got a file that is not a linked module.
	ErrNotLinked = errors.New("not a linked kernel module")
)
