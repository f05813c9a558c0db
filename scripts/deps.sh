#!/bin/sh
# Installs what graft's demo and tests need on Debian (or Ubuntu): Debian
# packages with apt-get (only those missing), and a Go toolchain when the
# machine has none that can build graft (scripts/go.sh). Safe to run again.
set -eu
cd "$(dirname "$0")/.."

# qemu and busybox run the VMs; gcc, make, flex, bison, bc, libelf-dev,
# python3 (bpf_doc.py, which preparing a tree with BTF runs) and dwarves
# (pahole, for kernels that build BTF for modules) are what kbuild needs;
# curl and unzip fetch Go when it is missing; mmdebstrap makes the root
# file systems that hold the compilers of other Debian releases.
pkgs="qemu-system-x86 busybox-static gcc make libelf-dev libssl-dev bc flex bison python3 dwarves xz-utils zstd cpio kmod binutils rsync ca-certificates curl unzip mmdebstrap"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ -n "$missing" ]; then
	echo "deps: installing$missing"
	$sudo apt-get update -q
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing
fi
# graft fetches kernels with 'apt-get download': its package lists must exist.
if ! apt-cache policy linux-image-amd64 2>/dev/null | grep -q Candidate; then
	$sudo apt-get update -q
fi
go=$(./scripts/go.sh)
echo "deps: ok ($($go version))"
