#!/usr/bin/env bash
# Print the Debian/Ubuntu packages that provide the shared libraries the built
# pycaffe needs at run time (resolved with ldd, owners found with dpkg -S), so
# the final Docker stage installs exactly those and no compilers or -dev packages.
#   docker/runtime-packages.sh DIR    (DIR: the folder holding caffe/_caffe.so)
set -euo pipefail
dir=$(realpath "${1:?usage: $0 DIR-containing-caffe}")
libs=$(find "$dir" -name '*.so*' -path '*caffe*' -exec ldd {} \; | awk '/=> \// {print $3}' | sort -u)
for lib in $libs; do
  real=$(realpath "$lib")
  case "$real" in "$dir"/*) continue ;; esac  # libcaffe itself ships inside the package
  owner=""
  # usrmerge: dpkg may know a library under /lib or under /usr/lib.
  for candidate in "$lib" "$real" "/usr$lib" "/usr$real" "${lib#/usr}" "${real#/usr}"; do
    owner=$(dpkg -S "$candidate" 2>/dev/null | head -n 1 | cut -d: -f1 || true)
    [ -n "$owner" ] && break
  done
  [ -n "$owner" ] || { echo "runtime-packages: no installed package provides $lib" >&2; exit 1; }
  echo "$owner"
done | sort -u
