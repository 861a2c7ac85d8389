#!/usr/bin/env bash
# The attack app (notebooks/app.ipynb: bnn.app()) as a web page, served by Voilà,
# token authentication always on. `make app` runs it on 127.0.0.1; the image's
# entrypoint (`docker run -p 8866:8866 breaking-nn app`) on all addresses.
#   JUPYTER_TOKEN  the token; unset, a random one is made and printed; empty is refused
#   JUPYTER_IP     address to listen on (default 0.0.0.0: reachable through -p 8866:8866)
#   JUPYTER_PORT   port (default 8866)
#   APP_NOTEBOOK   the notebook (default: notebooks/app.ipynb of the checkout or the image)
# Serving a class (README "Serving the app to a class"):
#   APP_IDLE_MINUTES    a page's kernel is ended after this long without activity (default 5; a
#                       fraction is fine). A running or queued attack keeps its kernel active.
#   APP_MAX_ATTACKS     attacks at once across all pages (default: the CPUs this process may use);
#                       the rest wait in line. OpenBLAS threads per attack: CPUs / APP_MAX_ATTACKS.
#   APP_MAX_KERNELS     pages (kernels) at once (default: available memory / 600 MB); page M+1
#                       gets "the app is full, try again in a minute"
#   APP_MAX_MEGAPIXELS  largest photo a page attacks (default 12)
#   APP_ALLOW_PRIVATE_URLS=1  let the photo URL box fetch from loopback/private addresses
#                       (off: anyone with the token could make the server request its own network)
# Voilà runs the notebook and shows its outputs only: the code cells are stripped
# (its default, kept). Uploads up to 200 MiB: the websocket message limit is raised
# from tornado's 10 MiB (a 48 MP JPEG is larger).
set -euo pipefail
if [ "${JUPYTER_TOKEN+set}" = set ] && [ -z "$JUPYTER_TOKEN" ]; then
  echo "start-app: JUPYTER_TOKEN is empty; the app never runs without a token. Unset it (a random token is printed) or give one." >&2
  exit 2
fi
token=${JUPYTER_TOKEN:-$(python3 -c 'import secrets; print(secrets.token_hex(24))')}
port=${JUPYTER_PORT:-8866}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
notebook=${APP_NOTEBOOK:-}
for candidate in "$here/../notebooks/app.ipynb" "$HOME/breaking-nn/notebooks/app.ipynb"; do
  [ -n "$notebook" ] || { [ -f "$candidate" ] && notebook=$candidate; }
done
[ -f "$notebook" ] || { echo "start-app: the app's notebook ${notebook:-notebooks/app.ipynb} is missing (set APP_NOTEBOOK)" >&2; exit 2; }

# The class settings, checked and turned into server options (one line each on a bad value).
read -r idle_s cull_every_s ping_s max_attacks blas_threads max_kernels < <(python3 - <<'PY'
import os, sys
def number(name, default, kind=float, least=0):
    text = os.environ.get(name, "").strip() or str(default)
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or value <= least:
        sys.exit(f"start-app: {name}={text!r} is not a number above {least}")
    return value
cpus = len(os.sched_getaffinity(0))
idle_s = max(1, round(number("APP_IDLE_MINUTES", 5) * 60))
attacks = number("APP_MAX_ATTACKS", cpus, int)
try:
    with open("/proc/meminfo") as f:
        available = next(int(l.split()[1]) * 1024 for l in f if l.startswith("MemAvailable:"))
except (OSError, StopIteration):
    available = 4 << 30
kernels = number("APP_MAX_KERNELS", max(1, available // (600 << 20)), int)
number("APP_MAX_MEGAPIXELS", 12)
print(idle_s, max(1, min(60, idle_s // 5)), max(1, min(30, idle_s // 3)), attacks, max(1, cpus // attacks), kernels)
PY
)
# APP_KEEP_ALIVE_S: how often a running (or queued) attack sends its kernel's sign of life
export BREAKING_NN_SERVED=1 APP_MAX_ATTACKS="$max_attacks" APP_KEEP_ALIVE_S=$(( (idle_s + 2) / 3 ))
run_dir=$(mktemp -d "${TMPDIR:-/tmp}/breaking-nn-app.XXXXXX")
export APP_QUEUE_DIR=${APP_QUEUE_DIR:-$run_dir/queue}
# Voilà's page ends its kernel with a beacon that needs the _xsrf cookie, which Voilà
# never sets (its beacon is refused with 403); this prelaunch hook sets it.
cat > "$run_dir/voila.py" <<'PY'
from breaking_nn.served_kernels import set_xsrf_cookie
c.VoilaConfiguration.prelaunch_hook = set_xsrf_cookie
PY
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-$blas_threads} OMP_NUM_THREADS=${OMP_NUM_THREADS:-$blas_threads}
echo "The app: http://127.0.0.1:$port/?token=$token"
echo "start-app: idle pages end after ${idle_s} s; ${max_attacks} attack(s) at once (${OPENBLAS_NUM_THREADS} BLAS thread(s) each); at most ${max_kernels} pages"
# cull_connected: a page left open but idle gives its kernel back too (reload to get a new one);
# websocket pings close the sockets of pages that vanished (lid shut, network gone).
exec voila "$notebook" --no-browser --Voila.ip="${JUPYTER_IP:-0.0.0.0}" --port="$port" --token="$token" \
  --Voila.tornado_settings="{'websocket_max_message_size': 209715200, 'websocket_ping_interval': $ping_s, 'websocket_ping_timeout': $((ping_s * 2))}" \
  --Voila.config_file_paths="$run_dir" \
  --VoilaConfiguration.multi_kernel_manager_class=breaking_nn.served_kernels.LimitedKernelManager \
  --LimitedKernelManager.max_kernels="$max_kernels" \
  --MappingKernelManager.cull_idle_timeout="$idle_s" --MappingKernelManager.cull_interval="$cull_every_s" \
  --MappingKernelManager.cull_connected=True --MappingKernelManager.cull_busy=False "$@"
