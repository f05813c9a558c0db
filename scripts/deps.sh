#!/bin/sh
# Installs what graft's demo and tests need on Debian (or Ubuntu). Safe to run
# again: it installs only what is missing.
set -eu

pkgs="qemu-system-x86 busybox-static gcc make libelf-dev bc flex bison xz-utils zstd cpio kmod binutils rsync ca-certificates"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if ! command -v go >/dev/null 2>&1; then
	# Debian's golang-go is older than go.mod asks for; Go 1.21 or newer fetches
	# the right toolchain itself (GOTOOLCHAIN=auto).
	missing="$missing golang-go"
fi

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
echo "deps: ok"
