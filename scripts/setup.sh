#!/usr/bin/env bash
# Set up breaking-nn on this machine (Debian 12 / Ubuntu 22.04), idempotently:
#   1. system packages for building Caffe   (docker/install-build-deps.sh; apt, as root)
#   2. the virtual environment .venv         (requirements.txt)
#   3. BVLC Caffe's pycaffe, CPU-only       (docker/build-caffe.sh, patched with the
#      series in docker/patches/), cached in $BREAKING_NN_CACHE (~/.cache/breaking-nn)
#      by scripts/caffe-key.sh (source, recipe, patches, .venv's Python and NumPy, OS)
#   4. pycaffe and breaking_nn (editable) installed into .venv
# A second run finds everything in place and takes seconds.
#
# Environment: PYTHON (default /usr/bin/python3: the interpreter boost-python was
# built for), VENV (default .venv), BREAKING_NN_CACHE.
set -euo pipefail
# The set-up reads and builds against its own .venv only: a PYTHONPATH (say, a venv
# with NumPy 2 for the benchmark's PyTorch) must not change the key or the build.
unset PYTHONPATH PYTHONHOME

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
python=${PYTHON:-/usr/bin/python3}
venv=${VENV:-$root/.venv}
cache=${BREAKING_NN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/breaking-nn}
start=$(date +%s)
say() { echo "setup: $*"; }
die() { echo "setup: error: $*" >&2; exit 1; }
logs=$cache/logs
# step NAME LOG COMMAND...: run a set-up step with its output in LOG; if it fails, say which
# step, show LOG's last lines, where the whole log is, and the one command to run again.
step() {
  local name=$1 log=$2; shift 2
  mkdir -p "$(dirname "$log")"
  if ! "$@" >"$log" 2>&1; then
    echo "setup: error: step '$name' failed. Last lines of its log:" >&2
    tail -n 20 "$log" | sed 's/^/    /' >&2
    failed "$name" "$log"
  fi
}
# failed NAME LOG: the last lines of a failed set-up: the step, the full log, the command to rerun.
failed() {
  echo "setup: error: step '$1' failed" >&2
  echo "setup:   full log: $2" >&2
  echo "setup:   run again with: make setup" >&2
  exit 1
}

# --- 0. What this machine has --------------------------------------------------------
[ -x "$python" ] || command -v "$python" >/dev/null || die "no Python at $python. Install it (sudo apt-get install python3 python3-venv python3-dev) or set PYTHON=/path/to/python3."
"$python" - <<'PY' || die "breaking-nn needs Python 3.10, 3.11 or 3.12 (the distribution's python3 on Debian 12 / Ubuntu 22.04); $python is $("$python" -V 2>&1). Set PYTHON=/usr/bin/python3."
import sys
sys.exit(0 if (3, 10) <= sys.version_info[:2] <= (3, 12) else 1)
PY

# --- 1. System packages --------------------------------------------------------------
missing=$(docker/install-build-deps.sh --missing 2>/dev/null || true)
if [ -n "$missing" ]; then
  if ! command -v apt-get >/dev/null; then
    die "apt-get not found. Install by hand the equivalents of: $(echo $missing). Then run this again."
  elif [ "$(id -u)" = 0 ]; then
    say "installing system packages: $(echo $missing)"
    step "system packages (apt-get)" "$logs/apt.log" docker/install-build-deps.sh
  elif sudo -n true 2>/dev/null; then
    say "installing system packages with sudo: $(echo $missing)"
    step "system packages (sudo apt-get)" "$logs/apt.log" sudo docker/install-build-deps.sh
  else
    die "missing system packages: $(echo $missing). Install them with: sudo docker/install-build-deps.sh   then run this again."
  fi
fi
command -v g++ >/dev/null || die "no C++ compiler (g++): sudo apt-get install build-essential"

# --- 2. Virtual environment ----------------------------------------------------------
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import sys" 2>/dev/null; then
  say "creating $venv"
  rm -rf "$venv"
  "$python" -m venv "$venv" || die "could not create a virtual environment: sudo apt-get install python3-venv"
fi
vpy=$venv/bin/python
req_key=$(cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)
if [ "$(cat "$venv/.requirements-key" 2>/dev/null)" != "$req_key" ]; then
  say "installing Python packages (requirements.txt)"
  step "Python packages (pip, requirements.txt)" "$logs/pip.log" \
    bash -c '"$1" -m pip install --upgrade pip && "$1" -m pip install -r requirements.txt && "$1" -m pip install --no-deps -e .' _ "$vpy"
  echo "$req_key" >"$venv/.requirements-key"
fi

# --- 3. Caffe, built once per source and configuration ------------------------------
caffe_key=$(scripts/caffe-key.sh "$vpy") || die "could not compute the Caffe cache key (see above)"
built=$cache/caffe-$caffe_key
if [ ! -f "$built/caffe/_caffe.so" ]; then
  say "building BVLC Caffe (CPU) into $built: about 9 minutes on 2 cores, once"
  mkdir -p "$cache/work"
  # build-caffe.sh names its own failed step (download, patches, compile, gtests) and log;
  # its whole output is kept in $logs/caffe-build.log too.
  mkdir -p "$logs"
  set +e
  docker/build-caffe.sh --python "$vpy" --out "$built" --device cpu --work "$cache/work" 2>&1 | tee "$logs/caffe-build.log"
  rc=${PIPESTATUS[0]}
  set -e
  [ "$rc" = 0 ] || failed "building Caffe (docker/build-caffe.sh)" "$logs/caffe-build.log (the step's own log is named above)"
else
  say "Caffe build $caffe_key found in the cache"
fi

# --- 4. Install pycaffe into the venv (never half-installed) -------------------------
site=$("$vpy" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
if [ "$(cat "$site/caffe/.build-key" 2>/dev/null)" != "$caffe_key" ]; then
  say "installing pycaffe into $venv"
  tmp=$(mktemp -d "$site/.caffe-install.XXXXXX")
  cp -r "$built/caffe" "$tmp/caffe"
  echo "$caffe_key" >"$tmp/caffe/.build-key"  # written last: marks a complete copy
  rm -rf "$site/caffe"
  mv "$tmp/caffe" "$site/caffe"
  rmdir "$tmp"
fi

env -u PYTHONPATH -u LD_LIBRARY_PATH "$vpy" -c "import caffe, breaking_nn" \
  || die "pycaffe does not import from $venv; remove $built and $venv and run this again"
blas=$(env -u PYTHONPATH "$vpy" -m breaking_nn.blas_info 2>/dev/null || echo "BLAS unknown")
say "ready in $(( $(date +%s) - start ))s: $vpy (caffe $caffe_key; $blas)"
