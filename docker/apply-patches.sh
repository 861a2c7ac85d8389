#!/usr/bin/env bash
# Apply breaking-nn's patch series (docker/patches/series) to a Caffe source tree:
#
#   docker/apply-patches.sh --src DIR [--device cpu|cuda] [--reverse]
#
# In the series' order, each with `patch -p1` and no fuzz; a patch whose series line
# names a device is applied for that device only. Each patch is tried first (--dry-run),
# so the first one that does not apply stops the run, named, with the tree left as the
# patches before it made it. --reverse takes the same patches off, last first.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
patches=$here/patches
src=""; device=cpu; reverse=0
while [ $# -gt 0 ]; do
  case "$1" in
    --src) src=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --reverse) reverse=1; shift ;;
    *) echo "apply-patches: unknown argument '$1' (see the usage at the top of $0)" >&2; exit 2 ;;
  esac
done
die() { echo "apply-patches: $*" >&2; exit 1; }
[ -d "$src" ] || die "--src must be a Caffe source tree (got '$src')"
case "$device" in cpu|cuda) ;; *) die "--device must be 'cpu' or 'cuda', not '$device'" ;; esac
command -v patch >/dev/null || die "'patch' is missing: run docker/install-build-deps.sh (as root) first"

names=()
while read -r name only _; do
  case "$name" in ''|'#'*) continue ;; esac
  [ -f "$patches/$name" ] || die "docker/patches/series names $name, which is not in docker/patches/"
  [ -z "$only" ] || [ "$only" = "$device" ] || continue
  names+=("$name")
done <"$patches/series"
[ ${#names[@]} -gt 0 ] || die "docker/patches/series lists no patch"

flags=(-d "$src" -p1 --batch --fuzz=0 --no-backup-if-mismatch)
if [ "$reverse" = 1 ]; then
  flags+=(--reverse)
  for (( i = ${#names[@]} - 1, j = 0; i > j; i--, j++ )); do
    t=${names[i]}; names[i]=${names[j]}; names[j]=$t
  done
else
  flags+=(--forward)
fi
for name in "${names[@]}"; do
  if ! why=$(patch "${flags[@]}" --dry-run <"$patches/$name" 2>&1); then
    echo "$why" | sed 's/^/    /' >&2
    die "docker/patches/$name does not $( [ "$reverse" = 1 ] && echo "reverse-apply to" || echo "apply to") $src (the lines above say where). Is the source the pinned one, and are the patches before it in the series applied?"
  fi
  patch "${flags[@]}" --quiet <"$patches/$name" >/dev/null
done
echo "apply-patches: $( [ "$reverse" = 1 ] && echo reversed || echo applied) ${#names[@]} patches ($device)"
