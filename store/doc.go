// Package store keeps the livepatches installed for each kernel release and
// re-applies them at boot.
//
// Installed patches live under DefaultDir/RELEASE/ (/var/lib/graft): a copy
// of each module and a manifest (manifest.json) with its name, sha256, time
// of installation and order. `graft boot`, run by the graft.service systemd
// unit, applies the running kernel's patches in that order, after checking
// each file against its recorded sha256; the kernel command line option
// graft.enable=0 turns it off for one boot.
package store
