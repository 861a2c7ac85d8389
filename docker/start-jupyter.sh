#!/usr/bin/env bash
# The image's command: Jupyter Lab on port 8888, token authentication always on.
# JUPYTER_TOKEN sets the token; unset, a random one is made and printed.
set -euo pipefail
if [ "${JUPYTER_TOKEN+set}" = set ] && [ -z "$JUPYTER_TOKEN" ]; then
  echo "start-jupyter: JUPYTER_TOKEN is empty; this image never runs Jupyter without a token. Unset it (a random token is printed) or give one." >&2
  exit 2
fi
export JUPYTER_TOKEN=${JUPYTER_TOKEN:-$(python3 -c 'import secrets; print(secrets.token_hex(24))')}
echo "Jupyter Lab: http://127.0.0.1:8888/lab?token=$JUPYTER_TOKEN"
exec jupyter lab --ip=0.0.0.0 --port=8888 --no-browser \
  --ServerApp.root_dir="$HOME/breaking-nn/notebooks" --IdentityProvider.token="$JUPYTER_TOKEN" "$@"
