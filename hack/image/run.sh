#!/usr/bin/env bash
# hack/image/run.sh ARCHIVE [ARGS...]: run the image of an OCI archive once with podman, with no
# network, from a private store that is removed afterwards (`make image-run` runs `--version`).
# Modest limits for open files and processes: podman's defaults are higher than runc may set
# without CAP_SYS_RESOURCE (as on the CI machines); lowering a limit is always allowed.
# Fails when the image does not start or the command fails: CI runs it after `make image`.
set -euo pipefail
ARCHIVE=${1:?usage: hack/image/run.sh ARCHIVE [ARGS...]}
shift
command -v podman >/dev/null || { echo "image-run: podman not found (apt-get install podman)" >&2; exit 1; }
STORE=$(mktemp -d "${TMPDIR:-/tmp}/ferroscale-podman.XXXXXX")
P=(podman --root "$STORE/root" --runroot "$STORE/run" --storage-driver vfs
   --cgroup-manager cgroupfs --events-backend file)
cleanup() { "${P[@]}" rmi --all --force >/dev/null 2>&1 || true; rm -rf "$STORE"; }
trap cleanup EXIT
"${P[@]}" run --rm --network none --pull never \
  --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 \
  "oci-archive:$ARCHIVE" "$@"
