#!/usr/bin/env bash
# Check the image's Jupyter in a buildah container CTR (as root, on the host):
#   docker/check-jupyter.sh CTR
# Jupyter on 127.0.0.1 refuses requests without the token (403), answers with it (200),
# and its server does not run as root; start-jupyter refuses an empty JUPYTER_TOKEN.
set -euo pipefail
ctr=$1
say() { echo "check-jupyter: $*"; }
die() { echo "check-jupyter: FAILED: $*" >&2; exit 1; }
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
log=$(mktemp)
jupyter_pid=""; server_pid=""
cleanup() {
  [ -n "$jupyter_pid" ] && kill "$jupyter_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null || true
  rm -f "$log"
}
trap cleanup EXIT
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
say "HTTP $without without the token, $with with it; server uid $server_uid"
if buildah run --isolation chroot --env JUPYTER_TOKEN= "$ctr" -- start-jupyter >/dev/null 2>&1; then
  die "start-jupyter accepted an empty JUPYTER_TOKEN"
fi
say "an empty JUPYTER_TOKEN is refused"
