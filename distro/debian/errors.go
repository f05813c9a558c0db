package debian

import "errors"

// ErrUnknownRelease means no Debian package exists for the requested kernel
// release or version. The wrapping error names the package that was tried.
var ErrUnknownRelease = errors.New("unknown kernel release")

// ErrNoAPT means apt-get or dpkg-deb, which graft uses to fetch and unpack
// Debian packages, is not available on this machine.
var ErrNoAPT = errors.New("apt-get or dpkg-deb not found (graft fetches kernels with them: run graft on Debian or Ubuntu)")
