#!/usr/bin/env bash
# Build BVLC Caffe's Python bindings (pycaffe) from source: the one recipe used by
# the host set-up (scripts/setup.sh) and the Docker image (Dockerfile).
#
#   docker/build-caffe.sh --python PY --out DIR [--device cpu|cuda]
#                         [--cuda-arch "75 80 86 89 90"] [--cuda-toolkit DIR]
#                         [--sdist FILE] [--work DIR] [--jobs N]
#
# The pinned sdist (docker/caffe-source.env) is patched with the series in
# docker/patches/ (docker/apply-patches.sh; each patch's header says what it changes,
# why, and what proves it gives stock Caffe's numbers), then built.
# PY must already have numpy installed (its headers are compiled in). The result,
# DIR/caffe, is a self-contained Python package: the pycaffe modules, _caffe.so,
# libcaffe.so.* beside it (found through an $ORIGIN rpath) and build_info.json.
# DIR is written only when the build succeeded (built in DIR.partial, then renamed).
# System packages come first: docker/install-build-deps.sh.
#
# --device cuda takes CUDA from NVIDIA's pinned PyPI wheels, on a host as in the image
# (docker/cuda-toolkit.sh): the runtime libraries (docker/cuda-runtime.txt) go into
# PY's environment, the compiler (docker/cuda-toolkit.txt) into --cuda-toolkit DIR
# (default WORK/cuda-toolkit; reused when already made). _caffe.so finds the runtime
# libraries through an rpath to site-packages/nvidia/..., so DIR/caffe must be
# installed into that same environment's site-packages. --cuda-arch lists compute
# capabilities x10 (SASS for each, plus PTX for the last, which newer GPUs JIT-compile);
# a value this nvcc does not know stops the build before compiling.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=caffe-source.env
. "$here/caffe-source.env"

python=""; out=""; device=cpu; cuda_arch="75 80 86 89 90"; cuda_toolkit=""; sdist=""; work=""
jobs=$(nproc)
while [ $# -gt 0 ]; do
  case "$1" in
    --python) python=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --cuda-arch) cuda_arch=$2; shift 2 ;;
    --cuda-toolkit) cuda_toolkit=$2; shift 2 ;;
    --sdist) sdist=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    *) echo "build-caffe: unknown argument '$1' (see the usage at the top of $0)" >&2; exit 2 ;;
  esac
done
die() { echo "build-caffe: $*" >&2; exit 1; }
# fail STEP LOG: a step failed; its log's last lines, the step and the full log's path.
fail() {
  echo "build-caffe: step '$1' failed. Last lines of $2:" >&2
  tail -n 30 "$2" | sed 's/^/    /' >&2
  echo "build-caffe: step '$1' failed; full log: $2" >&2
  exit 1
}
[ -n "$python" ] && [ -n "$out" ] || die "--python and --out are required (see the usage at the top of $0)"
case "$device" in cpu|cuda) ;; *) die "--device must be 'cpu' or 'cuda', not '$device'" ;; esac
command -v "$python" >/dev/null || die "Python interpreter '$python' not found"
for tool in make g++ protoc patchelf patch; do
  command -v "$tool" >/dev/null || die "'$tool' is missing: run docker/install-build-deps.sh (as root) first"
done

# --- Where the system pieces are -------------------------------------------------
arch=$(gcc -dumpmachine)
py_info=$("$python" - <<'PY'
import sysconfig, sys
try:
    import numpy
except ImportError:
    sys.exit("numpy is not installed in this Python: install requirements.txt first")
print(sysconfig.get_paths()["include"], numpy.get_include(),
      "%d%d" % sys.version_info[:2], sysconfig.get_config_var("LDVERSION"))
PY
) || die "could not query '$python' (is numpy installed in it?)"
read -r py_include np_include py_tag py_ldversion <<<"$py_info"
[ -f "$py_include/Python.h" ] || die "Python headers missing ($py_include/Python.h): install python3-dev"
boost_py="boost_python$py_tag"
ls /usr/lib/"$arch"/lib"$boost_py".so >/dev/null 2>&1 \
  || die "lib$boost_py.so not found: boost-python for Python ${py_tag:0:1}.${py_tag:1} is missing. Install libboost-python-dev, and build with the distribution's own python3 (/usr/bin/python3), which that boost-python was built for."
blas_include=""
for d in /usr/include/"$arch"/openblas-pthread /usr/include/openblas /usr/include; do
  [ -f "$d/cblas.h" ] && { blas_include=$d; break; }
done
[ -n "$blas_include" ] || die "cblas.h not found: install libopenblas-dev"

export CAFFE_DEVICE=$device CAFFE_LIB_ARCH=$arch CAFFE_BLAS_INCLUDE=$blas_include
export CAFFE_PYTHON_INCLUDE="$py_include $np_include"
export CAFFE_PYTHON_LIBS="$boost_py python$py_ldversion"
cuda_release=""; cuda_libs=""
if [ "$device" = cuda ]; then
  # The toolkit, assembled from the pinned wheels (the runtime wheels into $python's env).
  cuda_toolkit=${cuda_toolkit:-${work:-$(mktemp -d)}/cuda-toolkit}
  CAFFE_CUDA_DIR=$("$here/cuda-toolkit.sh" --python "$python" --dest "$cuda_toolkit" | tail -n 1) \
    || die "could not assemble the CUDA toolkit from the wheels (see above)"
  export CAFFE_CUDA_DIR
  cuda_release=$("$CAFFE_CUDA_DIR/bin/nvcc" --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p')
  # Where the runtime libraries sit, relative to site-packages (pycaffe's rpath).
  site=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  cuda_libs=$(cd "$site" && dirname "$(find nvidia -name 'libcudart.so.*' -path '*/lib/*' | head -n 1)")
  # Every architecture must be one this nvcc compiles for: fail now, not mid-build.
  [ -n "$(echo $cuda_arch)" ] || die "--cuda-arch is empty: give compute capabilities x10, e.g. \"75 80 86 89 90\""
  known=" $("$CAFFE_CUDA_DIR/bin/nvcc" --list-gpu-code | tr '\n' ' ') "
  flags=""; last=""
  for a in $cuda_arch; do
    [[ "$known" == *" sm_$a "* ]] \
      || die "CUDA_ARCH value '$a' is not an architecture nvcc $cuda_release compiles for (it knows: $(echo $known | sed 's/sm_//g')). Fix --cuda-arch / --build-arg CUDA_ARCH."
    flags+=" -gencode arch=compute_$a,code=sm_$a"; last=$a
  done
  # PTX for the newest architecture, so later GPUs can JIT-compile it.
  export CAFFE_CUDA_ARCH="$flags -gencode arch=compute_$last,code=compute_$last"
  echo "build-caffe: CUDA $cuda_release from the wheels ($CAFFE_CUDA_DIR), for sm_$(echo $cuda_arch | sed 's/ /, sm_/g') + PTX $last"
fi

# --- Source: the pinned sdist --------------------------------------------------------
work=${work:-$(mktemp -d)}
mkdir -p "$work"
if [ -z "$sdist" ]; then
  sdist="$work/$CAFFE_SDIST_NAME-$CAFFE_SDIST_VERSION.tar.gz"
  if [ ! -f "$sdist" ]; then
    echo "build-caffe: downloading $CAFFE_SDIST_NAME==$CAFFE_SDIST_VERSION from PyPI"
    "$python" -m pip download --quiet --no-deps --no-binary :all: \
      "$CAFFE_SDIST_NAME==$CAFFE_SDIST_VERSION" -d "$work" \
      || die "could not download $CAFFE_SDIST_NAME==$CAFFE_SDIST_VERSION from PyPI (network or index settings)"
  fi
fi
actual=$(sha256sum "$sdist" | cut -d' ' -f1)
[ "$actual" = "$CAFFE_SDIST_SHA256" ] \
  || die "$sdist has SHA-256 $actual, expected $CAFFE_SDIST_SHA256 (docker/caffe-source.env). Delete it and run again."

src="$work/src"
rm -rf "$src" && mkdir -p "$src"
tar -xzf "$sdist" -C "$src" --strip-components=1

# --- Patches: the series in docker/patches/ (each patch's header says what it changes,
# why, and what proves it gives the same numbers) --------------------------------------
"$here/apply-patches.sh" --src "$src" --device "$device" \
  || die "the patch series does not apply to $sdist (see above)"
# The pb2 module is regenerated by this machine's protoc.
rm -f "$src/python/caffe/proto/caffe_pb2.py"
cp "$here/Makefile.config" "$src/Makefile.config"

# --- Build -------------------------------------------------------------------------
log="$work/build.log"
echo "build-caffe: building pycaffe ($device, $jobs jobs); log: $log"
make -C "$src" -j"$jobs" pycaffe >"$log" 2>&1 || fail "compiling Caffe" "$log"

# Caffe's own gtests for every part the patch series touches (the gate: docker/caffe-gtests.sh
# lists them; CPU builds only: a CUDA build's test main needs a GPU to start). Built here,
# shipped in DIR/gtests, run below on the assembled build before it is kept.
gtests=()
if [ "$device" = cpu ]; then
  mapfile -t gtests < <("$here/caffe-gtests.sh" --list)
  echo "build-caffe: building Caffe's gtests: ${gtests[*]}"
  testbins=()
  for name in "${gtests[@]}"; do
    testbins+=(".temp_release/test/test_$name.testbin")  # this Makefile's release TEST_BIN_DIR
  done
  make -C "$src" -j"$jobs" "${testbins[@]}" >>"$log" 2>&1 \
    || fail "building Caffe's gtests" "$log"
fi

# _caffe.so needs libcaffe by its soname (this source's Makefile builds it in
# temp/lib as libcaffe.so.1.0.0-rc3); that file is checked here and shipped below.
libcaffe=$(patchelf --print-needed "$src/python/caffe/_caffe.so" | grep '^libcaffe\.so') \
  || die "_caffe.so does not link libcaffe: unexpected build output"
libcaffe_path=$(find -L "$src" -path '*/lib/*' -name "$libcaffe" -type f | head -n 1)
[ -n "$libcaffe_path" ] || die "the build produced no $libcaffe"
# A layer declared but never defined links fine and fails only at `import caffe`.
undefined=$(nm -D --undefined-only "$libcaffe_path" | c++filt | sed -e 's/^ *U //' -e 's/(.*//' \
  | grep '^caffe::' | sort -u || true)
[ -z "$undefined" ] || die "libcaffe has undefined Caffe symbols (declared, never defined): $(echo $undefined)"

# --- Assemble the self-contained package -------------------------------------------
partial="$out.partial"
rm -rf "$partial" && mkdir -p "$partial"
cp -rL "$src/python/caffe" "$partial/caffe"
rm -rf "$partial/caffe/test" "$partial/caffe/_caffe.cpp"
find "$partial/caffe" -name __pycache__ -prune -exec rm -rf {} +
# libcaffe goes beside _caffe.so, found there via $ORIGIN.
cp -L "$libcaffe_path" "$partial/caffe/$libcaffe"
# A CUDA build also finds the runtime wheels' libraries (cudart, cuBLAS, cuRAND)
# in the site-packages it is installed into; libcuda.so.1 comes from the driver.
rpath='$ORIGIN'
[ "$device" = cuda ] && rpath+=":\$ORIGIN/../$cuda_libs"
patchelf --set-rpath "$rpath" "$partial/caffe/_caffe.so"
patchelf --set-rpath "$rpath" "$partial/caffe/$libcaffe"
# The gtests go beside it (DIR/gtests, finding libcaffe in ../caffe), and the gate runs on
# the assembled build: the build is kept only if it passes (docker/caffe-gtests.sh).
gate_json=""
if [ ${#gtests[@]} -gt 0 ]; then
  mkdir -p "$partial/gtests"
  for name in "${gtests[@]}"; do
    cp -L "$src/.temp_release/test/test_$name.testbin" "$partial/gtests/"
    patchelf --set-rpath '$ORIGIN/../caffe' "$partial/gtests/test_$name.testbin"
  done
  "$here/caffe-gtests.sh" --build "$partial" --logs "$work/gtest-logs" --python "$python" --json "$work/gtests.json" \
    || { echo "build-caffe: step 'Caffe's gtests (the gate)' failed; the build was not kept" >&2; exit 1; }
  gate_json=$(cat "$work/gtests.json")
fi
# build_info.json: how this build was made, and the gate's results with the BLAS kernel it
# ran under (a cached build may later run under another kernel: `make caffe-gtests` reruns it).
"$python" - "$partial/caffe/build_info.json" "$gate_json" <<PY
import json, sys
info = {"device": "$device", "source": "$CAFFE_SDIST_NAME==$CAFFE_SDIST_VERSION",
        "sdist_sha256": "$CAFFE_SDIST_SHA256", "python": "$py_ldversion",
        "cuda_arch": "$( [ "$device" = cuda ] && echo $cuda_arch )", "cuda": "$cuda_release", "gtests": {}}
if sys.argv[2]:
    info.update(json.loads(sys.argv[2]))
with open(sys.argv[1], "w") as f:
    json.dump(info, f, indent=1)
PY
rm -rf "$out"
mv "$partial" "$out"
echo "build-caffe: done: $out/caffe"
