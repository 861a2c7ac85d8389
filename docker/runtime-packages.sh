#!/usr/bin/env bash
# Print the Debian/Ubuntu packages that provide the shared libraries the built
# pycaffe needs at run time (resolved with ldd, owners found with dpkg -S), so
# the final Docker stage installs exactly those and no compilers or -dev packages.
#   docker/runtime-packages.sh DIR    (DIR: the folder holding caffe/_caffe.so, e.g.
#                                      the site-packages it is installed into)
# Libraries inside DIR (libcaffe; a CUDA build's runtime wheels in DIR/nvidia) ship
# with it. A library that does not resolve is an error, except the NVIDIA driver's
# libcuda.so.1, which `docker run --gpus all` brings.
set -euo pipefail
dir=$(realpath "${1:?usage: $0 DIR-containing-caffe}")
ldd_out=$(find "$dir" -name '*.so*' -path '*caffe*' -exec ldd {} \;)
missing=$(echo "$ldd_out" | awk '/not found/ && $1 != "libcuda.so.1" {print $1}' | sort -u)
[ -z "$missing" ] || { echo "runtime-packages: these libraries do not resolve: $(echo $missing)" >&2; exit 1; }
libs=$(echo "$ldd_out" | awk '/=> \// {print $3}' | sort -u)
for lib in $libs; do
  real=$(realpath "$lib")
  case "$real" in "$dir"/*) continue ;; esac  # ships inside DIR (libcaffe, the CUDA wheels)
  owner=""
  # usrmerge: dpkg may know a library under /lib or under /usr/lib.
  for candidate in "$lib" "$real" "/usr$lib" "/usr$real" "${lib#/usr}" "${real#/usr}"; do
    owner=$(dpkg -S "$candidate" 2>/dev/null | head -n 1 | cut -d: -f1 || true)
    [ -n "$owner" ] && break
  done
  [ -n "$owner" ] || { echo "runtime-packages: no installed package provides $lib" >&2; exit 1; }
  echo "$owner"
done | sort -u
