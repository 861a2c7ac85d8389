#!/usr/bin/env bash
# The system packages needed to build BVLC Caffe's pycaffe (docker/build-caffe.sh),
# for Debian 12 (bookworm) and Ubuntu 22.04 (jammy). Used by the host set-up and
# the Dockerfile.
#
#   docker/install-build-deps.sh            install them (as root, with apt-get)
#   docker/install-build-deps.sh --list     print the package names
#   docker/install-build-deps.sh --missing  print those not installed (exit 0)
set -euo pipefail

. /etc/os-release 2>/dev/null || true
case "${ID:-}-${VERSION_ID:-}" in
  debian-12|ubuntu-22.04|ubuntu-24.04|debian-13) ;;
  *) echo "install-build-deps: ${PRETTY_NAME:-this system} is not Debian 12 or Ubuntu 22.04; trying the Debian 12 package names" >&2 ;;
esac

# Same names on both distributions; boost-python comes built for the
# distribution's python3 (3.11 on Debian 12, 3.10 on Ubuntu 22.04).
packages=(
  build-essential patchelf ca-certificates
  python3 python3-dev python3-venv
  libboost-system-dev libboost-thread-dev libboost-filesystem-dev libboost-regex-dev libboost-python-dev
  libprotobuf-dev protobuf-compiler libgoogle-glog-dev libgflags-dev libhdf5-dev libopenblas-dev
)

case "${1:-}" in
  --list) printf '%s\n' "${packages[@]}"; exit 0 ;;
  --missing)
    for p in "${packages[@]}"; do
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
    done
    exit 0 ;;
  "") ;;
  *) echo "install-build-deps: unknown argument '$1' (use --list or --missing)" >&2; exit 2 ;;
esac

command -v apt-get >/dev/null || { echo "install-build-deps: apt-get not found; install these packages (or your system's equivalents) by hand: ${packages[*]}" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "install-build-deps: run as root: sudo $0" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
echo "install-build-deps: installed ${#packages[@]} packages"
