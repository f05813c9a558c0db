#!/bin/sh
# Prints the go command that builds graft, installing Go when the machine
# has none that can.
#
# A go of version 1.21 or newer on PATH is used as it is: it fetches the
# exact toolchain that go.mod names by itself (GOTOOLCHAIN=auto, checked
# against sum.golang.org). Otherwise (no go, or Debian 12's go 1.19) this
# downloads Go's own toolchain module of that version from the Go module
# proxy, checks its sha256 against scripts/go-toolchains.sha256, and
# unpacks it into /usr/local/lib/graft/goVERSION; nothing else on the
# machine changes.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
want=$(sed -n 's/^go \([0-9][0-9.]*\)$/\1/p' "$root/go.mod")
[ -n "$want" ] || { echo "go.sh: no go line in go.mod" >&2; exit 1; }

# usable VERSION: whether a go of that version (go1.19.8, go1.26.8) can
# build graft.
usable() {
	v=${1#go}
	major=${v%%.*}
	rest=${v#*.}
	minor=${rest%%.*}
	[ "$major" -gt 1 ] || { [ "$major" -eq 1 ] && [ "$minor" -ge 21 ]; }
}

if command -v go >/dev/null 2>&1 && v=$(go env GOVERSION 2>/dev/null) && usable "$v"; then
	echo go
	exit 0
fi
dir=/usr/local/lib/graft/go$want
if [ -x "$dir/bin/go" ]; then
	echo "$dir/bin/go"
	exit 0
fi

arch=$(uname -m)
[ "$arch" = x86_64 ] || { echo "go.sh: graft builds on x86_64 only, not $arch" >&2; exit 1; }
sum=$(awk -v v="go$want.linux-amd64" '$2 == v { print $1 }' "$root/scripts/go-toolchains.sha256")
if [ -z "$sum" ]; then
	echo "go.sh: no sha256 for go$want.linux-amd64 in scripts/go-toolchains.sha256; add it (see that file)" >&2
	exit 1
fi
for tool in curl unzip sha256sum; do
	command -v $tool >/dev/null 2>&1 || { echo "go.sh: $tool is missing: run scripts/deps.sh" >&2; exit 1; }
done
proxy=${GOPROXY:-https://proxy.golang.org}
proxy=${proxy%%,*}
case "$proxy" in direct|off|"") proxy=https://proxy.golang.org ;; esac
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
url="$proxy/golang.org/toolchain/@v/v0.0.1-go$want.linux-amd64.zip"
echo "go.sh: installing go$want from $url into $dir" >&2
curl -sSfL -o "$tmp/go.zip" "$url"
echo "$sum  $tmp/go.zip" | sha256sum -c --quiet - >&2 || { echo "go.sh: $url does not match its sha256" >&2; exit 1; }
unzip -q "$tmp/go.zip" -d "$tmp/x"
src="$tmp/x/golang.org/toolchain@v0.0.1-go$want.linux-amd64"
# Module zips keep no file modes: the go command marks these executable
# when it unpacks a toolchain itself.
chmod -R a+rX "$src"
chmod a+x "$src"/bin/* "$src"/pkg/tool/*/*
$sudo mkdir -p /usr/local/lib/graft
$sudo rm -rf "$dir.tmp"
$sudo cp -a "$src" "$dir.tmp"
$sudo mv "$dir.tmp" "$dir"
echo "$dir/bin/go"
