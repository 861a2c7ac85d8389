#!/usr/bin/env bash
# The image's entrypoint:
#   (nothing) or lab   Jupyter Lab on port 8888 (start-jupyter)
#   app                the attack app as a web page, Voilà on port 8866 (start-app):
#                      docker run -p 8866:8866 breaking-nn app
#   anything else      run as given (docker run breaking-nn python -m breaking_nn predict ...)
# Both servers listen on all addresses inside the container and always need a token.
set -euo pipefail
case "${1:-lab}" in
  lab) shift $(( $# > 0 ? 1 : 0 )); exec start-jupyter "$@" ;;
  app) shift; exec start-app "$@" ;;
  *) exec "$@" ;;
esac
