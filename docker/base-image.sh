#!/usr/bin/env bash
# Make the Debian 12 base image the image checks build on, without a registry:
# a debootstrap minbase root filesystem (cached as a tar in $BREAKING_NN_CACHE),
# imported into podman as localhost/breaking-nn-base:bookworm. Prints that name.
# Needs root, podman and debootstrap (docker/check-image.sh installs them).
set -euo pipefail
cache=${BREAKING_NN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/breaking-nn}
base=localhost/breaking-nn-base:bookworm
die() { echo "base-image: FAILED: $*" >&2; exit 1; }

if ! podman image exists "$base"; then
  rootfs_tar=$cache/debian-bookworm-minbase.tar
  if [ ! -f "$rootfs_tar" ]; then
    echo "base-image: debootstrap: Debian 12 minbase" >&2
    work=$(mktemp -d)
    debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian >"$work/debootstrap.log" 2>&1 \
      || { tail -n 20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
    cat >"$work/rootfs/etc/apt/sources.list" <<'LIST'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
LIST
    rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
    mkdir -p "$cache"
    tar -C "$work/rootfs" -cf "$rootfs_tar.partial" . && mv "$rootfs_tar.partial" "$rootfs_tar"
    rm -rf "$work"
  fi
  podman import --quiet "$rootfs_tar" "$base" >/dev/null
fi
echo "$base"
