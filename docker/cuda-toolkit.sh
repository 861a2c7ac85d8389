#!/usr/bin/env bash
# Assemble a CUDA toolkit (what CUDA_HOME points to) from NVIDIA's pinned PyPI wheels,
# the same way on a host and in the Docker build:
#
#   docker/cuda-toolkit.sh --python PY --dest DIR
#
# 1. installs docker/cuda-runtime.txt (cudart, cuBLAS, cuRAND) into PY's environment:
#    the built pycaffe loads them from there at run time;
# 2. installs docker/cuda-toolkit.txt (nvcc, its headers, libnvvm, CCCL) into DIR/wheels,
#    outside that environment: build time only;
# 3. makes DIR/cuda, a CUDA_HOME-like tree of links into both: bin/nvcc, include/,
#    lib/ and lib64/ (-> lib) with the unversioned libcudart.so, libcublas.so, ... the
#    linker asks for.
# Prints DIR/cuda on its last line. A DIR already made for the same pins is reused.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
die() { echo "cuda-toolkit: $*" >&2; exit 1; }
python=""; dest=""
while [ $# -gt 0 ]; do
  case "$1" in
    --python) python=$2; shift 2 ;;
    --dest) dest=$2; shift 2 ;;
    *) die "unknown argument '$1' (usage: $0 --python PY --dest DIR)" ;;
  esac
done
[ -n "$python" ] && [ -n "$dest" ] || die "--python and --dest are required (usage: $0 --python PY --dest DIR)"
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
cuda=$dest/cuda
key=$(cat "$here/cuda-runtime.txt" "$here/cuda-toolkit.txt" | sha256sum | cut -c1-16)
site=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
  || die "could not run '$python'"

# The runtime libraries, in the environment pycaffe will run from (no-op when present).
"$python" -m pip install --quiet --no-deps -r "$here/cuda-runtime.txt" \
  || die "could not install the CUDA runtime wheels (docker/cuda-runtime.txt) into $python's environment (network or index settings)"
runtime=$(dirname "$(find "$site/nvidia" -name 'libcudart.so.*' -path '*/lib/*' 2>/dev/null | head -n 1)")
[ -d "$runtime" ] && [ "$runtime" != . ] || die "libcudart not found under $site/nvidia after installing docker/cuda-runtime.txt"
runtime_root=$(dirname "$runtime")   # e.g. site-packages/nvidia/cu13

if [ "$(cat "$cuda/.toolkit-key" 2>/dev/null)" = "$key" ] && [ -x "$cuda/bin/nvcc" ]; then
  echo "$cuda"
  exit 0
fi
rm -rf "$dest/wheels" "$cuda"
"$python" -m pip install --quiet --no-deps --target "$dest/wheels" -r "$here/cuda-toolkit.txt" \
  || die "could not install the CUDA compiler wheels (docker/cuda-toolkit.txt) (network or index settings)"
nvcc=$(find "$dest/wheels/nvidia" -path '*/bin/nvcc' -type f | head -n 1)
[ -n "$nvcc" ] || die "the wheels of docker/cuda-toolkit.txt hold no bin/nvcc: a CUDA compiler cannot be assembled from them"
compiler_root=$(dirname "$(dirname "$nvcc")")

# One tree of links: the compiler's files first, then the runtime's (headers, libraries).
mkdir -p "$cuda"
cp -rsn "$compiler_root/." "$cuda/"
cp -rsn "$runtime_root/." "$cuda/"
for lib in "$cuda"/lib/lib*.so.*; do
  base=${lib##*/}; base=${base%%.so.*}.so
  [ -e "$cuda/lib/$base" ] || ln -s "$(readlink -f "$lib")" "$cuda/lib/$base"
done
ln -sfn lib "$cuda/lib64"
for f in bin/nvcc include/cuda_runtime.h include/cublas_v2.h include/curand.h include/cccl/thrust/version.h \
         lib64/libcudart.so lib64/libcublas.so lib64/libcurand.so; do
  [ -e "$cuda/$f" ] || die "the assembled toolkit $cuda lacks $f"
done
"$cuda/bin/nvcc" --version >/dev/null || die "$cuda/bin/nvcc does not run"
echo "$key" >"$cuda/.toolkit-key"
echo "$cuda"
