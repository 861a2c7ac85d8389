#!/usr/bin/env bash
# Install what the image checks need (podman, buildah, debootstrap, curl), if missing.
# Debian/Ubuntu, as root. Called by docker/check-image.sh and docker/check-gpu-image.sh,
# so each of `make docker-test-cpu` and `make docker-test-gpu` works alone.
set -euo pipefail
missing=""
for tool in podman buildah debootstrap curl; do command -v "$tool" >/dev/null || missing+=" $tool"; done
[ -z "$missing" ] && exit 0
[ "$(id -u)" = 0 ] || { echo "podman-tools: missing$missing: run as root (sudo make docker-test)" >&2; exit 1; }
command -v apt-get >/dev/null || { echo "podman-tools: missing$missing, and no apt-get to install them" >&2; exit 1; }
echo "podman-tools: installing$missing"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq --no-install-recommends podman buildah debootstrap fuse-overlayfs uidmap curl >/dev/null; then
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends podman buildah debootstrap fuse-overlayfs uidmap curl >/dev/null
fi
