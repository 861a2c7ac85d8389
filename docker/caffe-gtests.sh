#!/usr/bin/env bash
# The gate: Caffe's own gtests for every part the patch series touches, run against a
# CPU build made by docker/build-caffe.sh (which runs it once, before the build is kept).
#
#   docker/caffe-gtests.sh --build DIR [--repeat N] [--logs DIR] [--python PY] [--json FILE]
#   docker/caffe-gtests.sh --list          the gtest names (build-caffe.sh builds these)
#
# DIR holds caffe/ (pycaffe with libcaffe) and gtests/test_NAME.testbin. Each binary runs
# with --gtest_repeat=N (default 1): every repeat draws new random inputs (Caffe's RNG is
# seeded from entropy), so a large N shows whether a test depends on the draw. The run
# names the BLAS library and the kernel it ran: OpenBLAS picks its kernels per CPU
# (Haswell, Zen, SkylakeX, Cooperlake), or as OPENBLAS_CORETYPE says; this script never
# sets it. --json FILE: also write the results and the kernel as JSON (for build_info.json).
#
# The one place that says which gtests run and which are left out, and why:
#   - the GPU variants (*GPU*): a CPU build has no GPU code to test;
#   - nothing else. The transpose tests of inner_product_layer compared two GEMM orders
#     within 4 ulps and failed at random under AVX-512 kernels; patch 0012 compares them
#     within the summation-order bound instead.
set -euo pipefail

GTESTS=(pooling_layer lrn_layer im2col_layer convolution_layer inner_product_layer neuron_layer)
GTEST_FILTER='-*GPU*'

build=""; repeat=1; logs=""; python=${PYTHON:-python3}; json=""
while [ $# -gt 0 ]; do
  case "$1" in
    --list) printf '%s\n' "${GTESTS[@]}"; exit 0 ;;
    --build) build=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --logs) logs=$2; shift 2 ;;
    --python) python=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    *) echo "caffe-gtests: unknown argument '$1' (see the usage at the top of $0)" >&2; exit 2 ;;
  esac
done
die() { echo "caffe-gtests: $*" >&2; exit 1; }
[[ "$repeat" =~ ^[1-9][0-9]*$ ]] || die "--repeat (REPEAT) must be a whole number >= 1, not '$repeat'"
[ -n "$build" ] || die "--build DIR is required (see the usage at the top of $0)"
[ -d "$build/gtests" ] || die "$build has no gtests/ folder: it is not a CPU build of this recipe. Run make setup (it builds Caffe and its gtests)."
logs=${logs:-$build/gtest-logs}
mkdir -p "$logs"

# blas_description BIN: "OpenBLAS 0.3.21 ..., kernel SkylakeX (/lib/.../libopenblas.so.0)", asked of the
# very library BIN loads, in a process with this environment (so OPENBLAS_CORETYPE applies alike).
blas_library() { ldd "$1" | awk '/blas/ && $3 ~ /^\// { print $3; exit }'; }
blas_field() {  # blas_field LIB kernel|config
  "$python" - "$1" "$2" <<'PY'
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
name = {"kernel": "openblas_get_corename", "config": "openblas_get_config"}[sys.argv[2]]
if not hasattr(lib, name):
    sys.exit(3)
getattr(lib, name).restype = ctypes.c_char_p
print(getattr(lib, name)().decode().strip())
PY
}
first_bin="$build/gtests/test_${GTESTS[0]}.testbin"
[ -x "$first_bin" ] || die "$first_bin is missing: run make setup again (remove $build first)"
blas_lib=$(blas_library "$first_bin")
kernel=""; blas=""
if [ -z "$blas_lib" ]; then
  blas="no BLAS library found by ldd in $first_bin"
elif kernel=$(blas_field "$blas_lib" kernel 2>/dev/null); then
  config=$(blas_field "$blas_lib" config)
  read -r blas_name blas_version _ <<<"$config"  # "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ..."
  blas="$blas_name $blas_version, kernel $kernel ($blas_lib)"
else
  kernel=""
  blas="$blas_lib (not OpenBLAS: it has no openblas_get_corename, so its kernel cannot be named)"
fi

echo "caffe-gtests: ${GTESTS[*]}, repeat $repeat, BLAS $blas"
results=""
for name in "${GTESTS[@]}"; do
  bin="$build/gtests/test_$name.testbin"
  log="$logs/gtest-$name.log"
  [ -x "$bin" ] || die "$bin is missing: run make setup again (remove $build first)"
  if ! "$bin" --gtest_filter="$GTEST_FILTER" --gtest_repeat="$repeat" >"$log" 2>&1; then
    failed=$(grep -E '^\[  FAILED  \] [A-Za-z]' "$log" | sed -e 's/^\[  FAILED  \] //' -e 's/, where.*//' -e 's/ (.*//' \
      | sort | uniq -c | awk '{ printf "%s%s (%d of '"$repeat"' repeats)", sep, $2, $1; sep = ", " }')
    {
      echo "caffe-gtests: Caffe's $name gtest failed${failed:+: $failed}. Last lines:"
      grep -v '^\[ *\(RUN\|OK\) *\]' "$log" | tail -n 15 | sed 's/^/    /'
      echo "caffe-gtests: it ran under BLAS $blas"
      echo "caffe-gtests: full log: $log"
      echo "caffe-gtests: what you can do: run it again with more repeats to see how often it fails"
      echo "    (make caffe-gtests REPEAT=20); try another BLAS kernel for that one command"
      echo "    (OPENBLAS_CORETYPE=Haswell make caffe-gtests); and report the log with the kernel named above."
    } >&2
    exit 1
  fi
  tests=$(grep -E '^\[  PASSED  \]' "$log" | tail -n 1 | sed 's/^\[  PASSED  \] //')
  echo "caffe-gtests: $name: $tests$( [ "$repeat" = 1 ] || echo " x $repeat repeats")"
  results+="${results:+, }\"$name\": \"$tests\""
done
echo "caffe-gtests: all passed (repeat $repeat; BLAS $blas); logs: $logs"
if [ -n "$json" ]; then
  "$python" - "$json" "$kernel" "$blas" "$repeat" "{$results}" <<'PY'
import json, sys
path, kernel, blas, repeat, results = sys.argv[1:]
with open(path, "w") as f:
    json.dump({"gtests": json.loads(results), "gtest_repeat": int(repeat),
               "gtest_blas_kernel": kernel or None, "gtest_blas": blas}, f)
PY
fi
