#!/usr/bin/env bash
# Check the attack app (start-app: Voilà) inside a built image's working container:
# without the token no app (Voilà redirects to its login page), with it the page (HTTP 200),
# the server not running as root, and an empty JUPYTER_TOKEN refused.
#   docker/check-app.sh CONTAINER     (a buildah working container of the image)
set -euo pipefail
ctr=$1
say() { echo "check-app: $*"; }
die() { echo "check-app: FAILED: $*" >&2; exit 1; }
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
log=$(mktemp)
buildah run --isolation chroot --env JUPYTER_TOKEN="$token" --env JUPYTER_IP=127.0.0.1 \
  --env JUPYTER_PORT="$port" "$ctr" -- breaking-nn-entrypoint app >"$log" 2>&1 &
app_pid=$!
trap 'kill "$app_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do
  curl -s -o /dev/null "http://127.0.0.1:$port/voila/static/voila.js" && break
  sleep 1
done
without=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "http://127.0.0.1:$port/" || true)
with=$(curl -s -o /dev/null -w '%{http_code}' --max-time 120 "http://127.0.0.1:$port/?token=$token" || true)
[ "$with" = 200 ] || { cat "$log" >&2; die "the app did not answer with the token (HTTP $with)"; }
case "$without" in
  "302 http://127.0.0.1:$port/login"*) ;;
  *) die "the app answered '$without' without the token (expected 302 to its login page)" ;;
esac
server_pid=$(pgrep -f "voila .*--port=$port" | head -n 1 || true)
[ -n "$server_pid" ] || die "could not find the Voilà server process"
server_uid=$(awk '/^Uid:/ {print $2}' "/proc/$server_pid/status")
[ "$server_uid" != 0 ] || die "the app's server runs as root"
grep -q "http://127.0.0.1:$port/?token=$token" "$log" || die "start-app did not print the URL with its token"
say "app: without the token '$without', with it HTTP $with; server uid $server_uid"
kill "$server_pid" 2>/dev/null || true
if buildah run --isolation chroot --env JUPYTER_TOKEN= "$ctr" -- breaking-nn-entrypoint app >/dev/null 2>&1; then
  die "start-app accepted an empty JUPYTER_TOKEN"
fi
say "an empty JUPYTER_TOKEN is refused"
