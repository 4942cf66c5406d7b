#!/usr/bin/env bash
# hack/local-node/load.sh ARCHIVE...: import OCI archives (e.g. target/image/ferroscale-*.oci.tar
# after `make image`) into the node's containerd, namespace k8s.io, for imagePullPolicy Never.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/env.sh"
[ $# -gt 0 ] || die "usage: hack/local-node/load.sh ARCHIVE..."
[ -n "$(running_pid containerd)" ] || die "the node's containerd is not running (hack/local-node/up.sh)"
for archive in "$@"; do
  ctr_ images import "$archive" >/dev/null
  say "imported $archive"
done
