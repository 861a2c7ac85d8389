#!/usr/bin/env bash
# Run a build command trusting an extra CA bundle when the build was given one as
# the secret "ca-bundle" (builds behind a TLS-intercepting proxy):
#   docker build --secret id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt ...
# The secret is mounted for that RUN step only; it never lands in a layer.
set -euo pipefail
bundle=/run/secrets/ca-bundle
if [ -s "$bundle" ]; then
  export PIP_CERT=$bundle REQUESTS_CA_BUNDLE=$bundle SSL_CERT_FILE=$bundle
fi
exec "$@"
