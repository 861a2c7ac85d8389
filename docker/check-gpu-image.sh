#!/usr/bin/env bash
# Build the GPU variant of the Docker image (the Dockerfile's default build) from the
# real Dockerfile with podman, for one architecture (CUDA_ARCH, default 90: H100) to
# keep the compile short, and check what a machine without a GPU can check:
#   the build info says cuda; ldd resolves every library of _caffe.so and libcaffe
#   (the CUDA runtime from the venv's wheels, by rpath) except the driver's
#   libcuda.so.1; no compiler (gcc, g++, cc, nvcc, ptxas, cicc) in the final image;
#   device="gpu" is a clear error, not an abort; the CPU path (forward, backward,
#   the attack, the notebooks, open_nsfw, the CLI: pytest -m image) runs inside the
#   image; Jupyter needs its token (docker/check-jupyter.sh).
# Not checkable here: CUDA kernels on a GPU (README, "What is tested and what is not").
# Needs root; installs podman, buildah, debootstrap (docker/podman-tools.sh) if missing.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
arch=${CUDA_ARCH:-90}
image=localhost/breaking-nn:gpu
# shellcheck source-path=SCRIPTDIR source=image-tests.sh
. docker/image-tests.sh
image_check_start check-gpu-image docker-test-gpu

# --- Build: the Dockerfile's defaults, only the base and CUDA_ARCH given -------------
build_image "$image" --build-arg CUDA_ARCH="$arch"
lap "built $image (CUDA, sm_$arch)"

# --- Checks inside the image ------------------------------------------------------------
enter_image "$image"

info=$(inside python -c "import caffe, json; from breaking_nn.caffe_runtime import build_info; print(json.dumps(build_info()))") \
  || die "caffe does not import in the image"
say "build info: $info"
python3 -c "import json, sys; i = json.loads(sys.argv[1]); sys.exit(not (i['device'] == 'cuda' and i['cuda_arch'] == sys.argv[2] and i['cuda']))" \
  "$info" "$arch" || die "the build info does not say a CUDA build for sm_$arch"

# Every library resolves (CUDA's from the venv, by rpath) but the driver's.
ldd_out=$(inside bash -c 'cd "$(python -c "import caffe, os; print(os.path.dirname(caffe.__file__))")" && env | grep -c ^LD_LIBRARY_PATH= ; ldd _caffe.so libcaffe.so*') \
  || true
[ "$(echo "$ldd_out" | head -n 1)" = 0 ] || die "the image sets LD_LIBRARY_PATH"
missing=$(echo "$ldd_out" | awk '/not found/ && $1 != "libcuda.so.1" {print $1}' | sort -u)
[ -z "$missing" ] || die "libraries of _caffe.so/libcaffe do not resolve: $(echo $missing)"
for lib in libcudart libcublas libcurand; do
  # ldd runs inside caffe/, so the rpath $ORIGIN/../nvidia shows as caffe/./../nvidia.
  echo "$ldd_out" | grep -qE "$lib\.so\.[0-9]+ => /opt/venv/\S*/site-packages/(caffe/\./\.\./)?nvidia/" \
    || die "$lib does not resolve into the venv's CUDA wheels: $(echo "$ldd_out" | grep "$lib" || echo absent)"
done
say "ldd: every library resolves (CUDA runtime from /opt/venv's wheels), no LD_LIBRARY_PATH"

# The probe ends with END, so a probe that failed to run cannot pass as "nothing found".
found=$(inside bash -c 'for t in gcc g++ cc c++ nvcc ptxas cicc; do command -v "$t" || true; done
  find / -xdev \( -name nvcc -o -name cicc -o -name ptxas -o -name cuda_runtime.h \) -print 2>/dev/null
  for d in /tmp/caffe-work /src /opt/cuda-toolkit; do [ ! -e "$d" ] || echo "$d"; done
  echo END') || die "could not look for compilers in the image"
[ "$found" = END ] || die "the final image carries a compiler, CUDA headers or build trees: $(echo ${found%END})"
say "no compilers, CUDA headers or build trees in the final image"

# device="gpu" without a driver: one clear error, and the process lives on.
probe='
import tempfile
import breaking_nn as bnn
from breaking_nn import paths
from breaking_nn.errors import CaffeNotAvailableError
from breaking_nn.generated import generate_weights
weights = generate_weights(paths.googlenet_prototxt(), tempfile.mkdtemp() + "/g.caffemodel")
try:
    bnn.load_googlenet(weights, device="gpu")
    print("LOADED ON A GPU")
except CaffeNotAvailableError as exc:
    print("ERROR:", exc)
print("still alive")
'
out=$(inside python -c "$probe" 2>&1) || die "device='gpu' killed the process: $out"
echo "$out" | grep -q '^ERROR: no CUDA driver or GPU found: no CUDA driver' && echo "$out" | grep -q '^still alive$' \
  || die "device='gpu' without a driver did not give the expected error: $out"
say "device='gpu' here: $(echo "$out" | grep '^ERROR:' | cut -c8-)"

image_smoke || die "the smoke tests (pytest -m image) failed inside the GPU image"
lap "smoke tests (pytest -m image, CPU path: forward, backward, the attack, the notebooks, open_nsfw) pass inside the GPU image"

docker/check-jupyter.sh "$ctr" || die "Jupyter's checks failed in the GPU image"
lap "all GPU image checks passed"
