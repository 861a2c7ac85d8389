#!/usr/bin/env bash
# The attack app (notebooks/app.ipynb: bnn.app()) as a web page, served by Voilà,
# token authentication always on. `make app` runs it on 127.0.0.1; the image's
# entrypoint (`docker run -p 8866:8866 breaking-nn app`) on all addresses.
#   JUPYTER_TOKEN  the token; unset, a random one is made and printed; empty is refused
#   JUPYTER_IP     address to listen on (default 0.0.0.0: reachable through -p 8866:8866)
#   JUPYTER_PORT   port (default 8866)
#   APP_NOTEBOOK   the notebook (default: notebooks/app.ipynb of the checkout or the image)
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
echo "The app: http://127.0.0.1:$port/?token=$token"
exec voila "$notebook" --no-browser --Voila.ip="${JUPYTER_IP:-0.0.0.0}" --port="$port" --token="$token" \
  --Voila.tornado_settings="{'websocket_max_message_size': 209715200}" "$@"
