#!/usr/bin/env bash
# Check the image's Jupyter in a buildah container CTR (as root, on the host):
#   docker/check-jupyter.sh CTR
# Jupyter on 127.0.0.1 refuses requests without the token (403), answers with it (200),
# and its server does not run as root; start-jupyter refuses an empty JUPYTER_TOKEN.
set -euo pipefail
ctr=$1
# shellcheck source-path=SCRIPTDIR source=server-check.sh
. "$(dirname "${BASH_SOURCE[0]}")/server-check.sh"
server_check_setup check-jupyter

start_server "$ctr" start-jupyter
wait_for_url "http://127.0.0.1:$port/api/status?token=$token"
without=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/status" || true)
with=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: token $token" "http://127.0.0.1:$port/api/status" || true)
[ "$with" = 200 ] || { cat "$log" >&2; die "Jupyter did not answer with the token (HTTP $with)"; }
[ "$without" = 403 ] || die "Jupyter answered HTTP $without without a token (expected 403)"
server_process "jupyter.lab .*--port=$port"
say "HTTP $without without the token, $with with it; server uid $server_uid"
refuses_empty_token "$ctr" start-jupyter
