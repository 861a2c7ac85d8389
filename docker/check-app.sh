#!/usr/bin/env bash
# Check the attack app (start-app: Voilà) inside a built image's working container:
# without the token no app (Voilà redirects to its login page), with it the page (HTTP 200),
# the server not running as root, an empty JUPYTER_TOKEN refused, the class settings printed,
# and the page's unload beacon ending its kernel (the _xsrf cookie set: HTTP 204).
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
grep -q "start-app: idle pages end after 300 s" "$log" || die "start-app did not print its class settings"
jar=$(mktemp)
page=$(curl -s -c "$jar" -b "$jar" --max-time 120 "http://127.0.0.1:$port/?token=$token" || true)
kernel=$(grep -o '"kernelId": "[0-9a-f-]*"' <<<"$page" | head -1 | cut -d'"' -f4)
xsrf=$(awk '$6 == "_xsrf" {print $7}' "$jar")
[ -n "$kernel" ] && [ -n "$xsrf" ] || die "the page gave no kernel id or no _xsrf cookie (the unload beacon would be refused)"
beacon=$(curl -s -o /dev/null -w '%{http_code}' -b "$jar" -F "_xsrf=$xsrf" "http://127.0.0.1:$port/voila/api/shutdown/$kernel" || true)
rm -f "$jar"
[ "$beacon" = 204 ] || die "the page's unload beacon was answered HTTP $beacon (expected 204: its kernel ended)"
say "app: without the token '$without', with it HTTP $with; unload beacon HTTP $beacon; server uid $server_uid"
refuses_empty_token "$ctr" breaking-nn-entrypoint app
