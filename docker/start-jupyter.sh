#!/usr/bin/env bash
# The image's command: Jupyter Lab, token authentication always on, no requests of
# its own to the internet (JupyterLab's news feed and update check are off), uploads
# up to 200 MiB (the websocket message limit; tornado's default is 10 MiB).
#   JUPYTER_TOKEN  the token; unset, a random one is made and printed; empty is refused
#   JUPYTER_IP     address to listen on (default 0.0.0.0: reachable through -p 8888:8888)
#   JUPYTER_PORT   port (default 8888)
set -euo pipefail
if [ "${JUPYTER_TOKEN+set}" = set ] && [ -z "$JUPYTER_TOKEN" ]; then
  echo "start-jupyter: JUPYTER_TOKEN is empty; this image never runs Jupyter without a token. Unset it (a random token is printed) or give one." >&2
  exit 2
fi
export JUPYTER_TOKEN=${JUPYTER_TOKEN:-$(python3 -c 'import secrets; print(secrets.token_hex(24))')}
port=${JUPYTER_PORT:-8888}
echo "Jupyter Lab: http://127.0.0.1:$port/lab?token=$JUPYTER_TOKEN"
exec jupyter lab --no-browser --ip="${JUPYTER_IP:-0.0.0.0}" --port="$port" \
  --ServerApp.root_dir="$HOME/breaking-nn/notebooks" --IdentityProvider.token="$JUPYTER_TOKEN" \
  --LabApp.news_url=None --LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate \
  --ServerApp.tornado_settings="{'websocket_max_message_size': 209715200}" "$@"
