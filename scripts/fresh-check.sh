#!/bin/sh
# Runs the README's demo command on a fresh Debian 12 machine: a minimal
# bookworm root file system made with mmdebstrap, the project cloned into
# it (its committed HEAD), and 'make demo' run inside with chroot, as a new
# user would. The host's network settings go in: CA bundle, proxy
# variables, apt proxy configuration, GOPROXY/GOSUMDB/GOFLAGS.
#
#   scripts/fresh-check.sh                 bookworm, its default kernel
#   FRESH_BACKPORTS=1 scripts/fresh-check.sh   bookworm-backports in the sources,
#                                          the demo on its 6.12 kernel
#
# Needs root. FRESH_KEEP=1 keeps the root file system (in $FRESH_DIR);
# FRESH_REUSE=1 runs in a kept one again instead of making a new one.
set -eu
[ "$(id -u)" -eq 0 ] || { echo "fresh-check: needs root (mmdebstrap and chroot)" >&2; exit 4; }
repo=$(cd "$(dirname "$0")/.." && pwd)
mirror=${FRESH_MIRROR:-http://deb.debian.org/debian}
dir=${FRESH_DIR:-$(mktemp -d /var/tmp/graft-fresh-XXXXXX)}
start=$(date +%s)

if ! command -v mmdebstrap >/dev/null 2>&1; then
	apt-get update -q
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mmdebstrap
fi

mounted=""
cleanup() {
	for m in $mounted; do umount -l "$dir/$m" 2>/dev/null || true; done
	[ "${FRESH_KEEP:-}" = 1 ] || rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "${FRESH_REUSE:-}" = 1 ] && [ -x "$dir/bin/sh" ]; then
	echo "fresh-check: reusing $dir"
	rm -rf "$dir/root/graft"
else
echo "fresh-check: mmdebstrap bookworm into $dir"
rm -rf "$dir"
# The sources of a Debian 12 installation: the release, its updates and
# its security updates.
mmdebstrap --variant=minbase --include=git,make,ca-certificates,apt --quiet bookworm "$dir" \
	"deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
	"deb ${FRESH_SECURITY_MIRROR:-http://deb.debian.org/debian-security} bookworm-security main"

# The host's network settings.
[ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/ca-certificates.crt"
cp /etc/resolv.conf "$dir/etc/resolv.conf" 2>/dev/null || true
grep -ls -i proxy /etc/apt/apt.conf.d/* 2>/dev/null | while read -r f; do cp "$f" "$dir/etc/apt/apt.conf.d/"; done
if [ "${FRESH_BACKPORTS:-}" = 1 ]; then
	echo "deb $mirror bookworm-backports main" > "$dir/etc/apt/sources.list.d/backports.list"
fi
fi

for m in proc sys dev; do
	mkdir -p "$dir/$m"
	mount --rbind "/$m" "$dir/$m"
	mount --make-rslave "$dir/$m"
	mounted="$m $mounted"
done

git clone -q "$repo" "$dir/root/graft"
env_args="HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8"
for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY GOPROXY GOSUMDB GOFLAGS GONOSUMDB GOPRIVATE; do
	eval "val=\${$v:-}"
	[ -n "$val" ] && env_args="$env_args $v=$val"
done

demo="make demo"
if [ "${FRESH_BACKPORTS:-}" = 1 ]; then
	# The newest 6.12 kernel of bookworm-backports, once its lists are in.
	demo="apt-get update -q && make demo KERNEL=\$(apt-cache search --names-only '^linux-image-6\\.12\\.[0-9.]*\\+deb12-amd64\$' | sort -V | tail -1 | cut -d' ' -f1 | sed 's/^linux-image-//')"
fi
echo "fresh-check: chroot $dir: cd /root/graft && $demo"
# shellcheck disable=SC2086
chroot "$dir" /usr/bin/env -i $env_args /bin/sh -c "cd /root/graft && $demo"
echo "fresh-check: passed in $(( $(date +%s) - start )) s"
