# shellcheck shell=bash
# Sourced by the image checks: buildah_run, `buildah run --isolation chroot` with one retry rule.
#   buildah_run [RUN OPTIONS] CONTAINER -- COMMAND [ARGS]
# Before it starts a container, buildah (containers/storage's unshare.c) copies itself into a
# memfd and seals it. The kernel refuses the seal with EBUSY while another reference pins one
# of the memfd's pages, a short-lived race (seen once in CI: "Close_Fd sealing memfd copy:
# Device or resource busy"). COMMAND has not started then, so running it again is safe:
# buildah_run does, up to 3 tries in all. Any other failure returns at once, with its status.
# stderr is passed through as it comes (tee), and also kept to recognise the race.
# Runs under the callers' `set -euo pipefail`.
buildah_run() {
  local err rc try statuses
  err=$(mktemp)
  for try in 1 2 3; do
    # stdout goes straight to fd 3 (the caller's stdout); stderr through tee, which a pipeline
    # waits for, so $err is complete before it is read.
    # `|| true`: errexit is off inside the group, so the statuses are always recorded.
    { buildah run --isolation chroot "$@" 2>&1 1>&3 3>&- | tee "$err" >&2 3>&-
      statuses=("${PIPESTATUS[@]}"); } 3>&1 || true
    rc=${statuses[0]}
    if [ "$rc" != 0 ] && [ "$try" -lt 3 ] && grep -q "sealing memfd copy" "$err"; then
      echo "buildah-run: buildah could not start the container (the kernel refused, EBUSY, to seal its memfd copy: a transient race; the command did not run). Trying again ($try of 3 failed)." >&2
      sleep 2
      continue
    fi
    break
  done
  rm -f "$err"
  return "$rc"
}
