# shellcheck shell=bash
# Sourced by the image checks: podman and buildah commands with one retry rule.
#   buildah_run [RUN OPTIONS] CONTAINER -- COMMAND [ARGS]   `buildah run --isolation chroot ...`
#   podman_build [BUILD OPTIONS] CONTEXT                      `podman build ...`
#   memfd_retry COMMAND [ARGS]                                any other such command
# Before a container (or a RUN step) starts, buildah (containers/storage's unshare.c) copies
# itself into a memfd and seals it. The kernel refuses the seal with EBUSY while another
# reference pins one of the memfd's pages, a short-lived race (seen once in CI: "Close_Fd
# sealing memfd copy: Device or resource busy"). The container's command has not started then,
# and a build keeps the steps it finished, so running the command again is safe: these do, up
# to 3 tries in all. Any other failure returns at once, with its status.
# stdout passes straight through; stderr is passed through as it comes (tee), and also kept to
# recognise the race (a RUN step's stderr is podman build's). Works under `set -euo pipefail`.
memfd_retry() {
  local err rc try statuses
  err=$(mktemp)
  for try in 1 2 3; do
    # stdout goes to fd 3 (the caller's stdout); stderr through tee, which the pipeline waits
    # for, so $err is complete before it is read. `|| true`: errexit is off inside the group,
    # so the statuses are always recorded.
    { "$@" 2>&1 1>&3 3>&- | tee "$err" >&2 3>&-
      statuses=("${PIPESTATUS[@]}"); } 3>&1 || true
    rc=${statuses[0]}
    if [ "$rc" != 0 ] && [ "$try" -lt 3 ] && grep -q "sealing memfd copy" "$err"; then
      echo "memfd-retry: $1 could not start a container (the kernel refused, EBUSY, to seal buildah's memfd copy: a transient race; nothing ran). Trying again ($try of 3 failed)." >&2
      sleep 2
      continue
    fi
    break
  done
  rm -f "$err"
  return "$rc"
}

buildah_run() { memfd_retry buildah run --isolation chroot "$@"; }
podman_build() { memfd_retry podman build "$@"; }
