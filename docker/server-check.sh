# shellcheck shell=bash
# Sourced by docker/check-jupyter.sh and docker/check-app.sh: the steps both take to check a
# token-protected server (Jupyter, Voila) started inside a buildah working container.
#   server_check_setup NAME     say/die prefixed by NAME; a free 127.0.0.1 $port, a fresh $token,
#                               a $log file; on exit the server is stopped and $log removed
#   start_server CTR COMMAND    runs COMMAND in CTR in the background with JUPYTER_TOKEN=$token,
#                               JUPYTER_IP=127.0.0.1, JUPYTER_PORT=$port; its output goes to $log
#   wait_for_url URL            polls URL for up to 60 s
#   server_process PATTERN      sets $server_pid (the process whose command line matches
#                               PATTERN) and $server_uid; dies when there is none or it is root
#   refuses_empty_token CTR COMMAND   dies unless COMMAND fails with JUPYTER_TOKEN empty
# shellcheck source-path=SCRIPTDIR source=memfd-retry.sh
. "$(dirname "${BASH_SOURCE[0]}")/memfd-retry.sh"

server_check_setup() {
  check_name=$1
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  token=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  log=$(mktemp)
  starter_pid=""; server_pid=""
  trap stop_server EXIT
}
say() { echo "$check_name: $*"; }
die() { echo "$check_name: FAILED: $*" >&2; exit 1; }

stop_server() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
  # The starter is a subshell running buildah_run: stop its buildah too.
  [ -n "$starter_pid" ] && { pkill -P "$starter_pid" 2>/dev/null; kill "$starter_pid" 2>/dev/null; }
  rm -f "$log"
  return 0
}

start_server() {
  local ctr=$1; shift
  buildah_run --env JUPYTER_TOKEN="$token" --env JUPYTER_IP=127.0.0.1 --env JUPYTER_PORT="$port" \
    "$ctr" -- "$@" >"$log" 2>&1 &
  starter_pid=$!
}

wait_for_url() {
  local _
  for _ in $(seq 1 60); do
    curl -s -o /dev/null "$1" && return 0
    sleep 1
  done
  return 0  # the checks that follow say what is wrong
}

server_process() {
  server_pid=$(pgrep -f "$1" | head -n 1 || true)
  [ -n "$server_pid" ] || die "could not find the server process ($1)"
  server_uid=$(awk '/^Uid:/ {print $2}' "/proc/$server_pid/status")
  [ "$server_uid" != 0 ] || die "the server runs as root"
}

refuses_empty_token() {
  local ctr=$1; shift
  if buildah_run --env JUPYTER_TOKEN= "$ctr" -- "$@" >/dev/null 2>&1; then
    die "$* accepted an empty JUPYTER_TOKEN"
  fi
  say "an empty JUPYTER_TOKEN is refused"
}
