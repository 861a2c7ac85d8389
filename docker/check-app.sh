#!/usr/bin/env bash
# Check the attack app (start-app: Voilà) inside a built image's working container:
# without the token no app (Voilà redirects to its login page), with it the page (HTTP 200),
# the server not running as root, and an empty JUPYTER_TOKEN refused.
#   docker/check-app.sh CONTAINER     (a buildah working container of the image)
set -euo pipefail
ctr=$1
# shellcheck source-path=SCRIPTDIR source=server-check.sh
. "$(dirname "${BASH_SOURCE[0]}")/server-check.sh"
server_check_setup check-app

start_server "$ctr" breaking-nn-entrypoint app
wait_for_url "http://127.0.0.1:$port/voila/static/voila.js"
without=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' "http://127.0.0.1:$port/" || true)
with=$(curl -s -o /dev/null -w '%{http_code}' --max-time 120 "http://127.0.0.1:$port/?token=$token" || true)
[ "$with" = 200 ] || { cat "$log" >&2; die "the app did not answer with the token (HTTP $with)"; }
case "$without" in
  "302 http://127.0.0.1:$port/login"*) ;;
  *) die "the app answered '$without' without the token (expected 302 to its login page)" ;;
esac
server_process "voila .*--port=$port"
grep -q "http://127.0.0.1:$port/?token=$token" "$log" || die "start-app did not print the URL with its token"
say "app: without the token '$without', with it HTTP $with; server uid $server_uid"
refuses_empty_token "$ctr" breaking-nn-entrypoint app
