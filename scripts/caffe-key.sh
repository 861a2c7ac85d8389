#!/usr/bin/env bash
# Print the cache key of a CPU Caffe build for the environment whose Python is PY:
#
#   scripts/caffe-key.sh PY
#
# 16 hex digits of the SHA-256 of: the pinned source (docker/caffe-source.env), the
# build configuration and recipe, the patch series and every patch in it, PY's own
# Python and NumPy versions, the OS release and the machine. PY is asked with -I
# (isolated): PYTHONPATH and the user's site-packages cannot change the answer, so a
# NumPy 2 on PYTHONPATH neither changes the key nor reaches the build.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ $# = 1 ] || { echo "usage: $0 PY" >&2; exit 2; }
vpy=$1
versions=$("$vpy" -I -c "import sys, numpy; print(sys.version, numpy.__version__)") \
  || { echo "caffe-key: '$vpy' cannot import numpy" >&2; exit 1; }
cd "$root"
{
  cat docker/caffe-source.env docker/Makefile.config docker/build-caffe.sh docker/caffe-gtests.sh docker/apply-patches.sh
  cat docker/patches/series
  for patch in docker/patches/*.patch; do echo "$patch"; cat "$patch"; done
  echo "$versions"
  grep -E '^(ID|VERSION_ID)=' /etc/os-release 2>/dev/null || true
  uname -m; echo cpu
} | sha256sum | cut -c1-16
