#!/usr/bin/env bash
# hack/local-node/images.sh: the node's own images, built offline from scratch with buildah:
#   pause   build/pause/linux/pause.c of the Kubernetes tree ($K8S_SRC), gcc -static
#   burner  hack/local-node/burner.c, gcc -static: burns a CPU while /control/burn exists
# Writes target/local-node/{pause,burner}.oci.tar. up.sh imports them (and target/image's
# operator image) into containerd's k8s.io namespace. About 2 s.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/env.sh"
cd "$HERE/../.."
OUT=target/local-node
mkdir -p "$OUT"
command -v buildah >/dev/null || die "buildah not found (apt-get install buildah)"
[ -f "$K8S_SRC/build/pause/linux/pause.c" ] || die "$K8S_SRC/build/pause/linux/pause.c not found (set K8S_SRC)"

gcc -Os -Wall -Werror -static -DVERSION=v3.9-local -o "$OUT/pause" "$K8S_SRC/build/pause/linux/pause.c"
gcc -O2 -Wall -Werror -static -o "$OUT/burner" "$HERE/burner.c"
strip "$OUT/pause" "$OUT/burner"

B=(buildah --root "$OUT/storage/root" --runroot "$OUT/storage/run" --storage-driver vfs)
trap 'rm -rf "$OUT/storage"' EXIT
image() {   # image NAME REFERENCE USER
  local ctr
  ctr=$("${B[@]}" from scratch)
  "${B[@]}" copy --chmod 0755 "$ctr" "$OUT/$1" "/$1" >/dev/null
  "${B[@]}" config --entrypoint "[\"/$1\"]" --user "$3" "$ctr"
  rm -f "$OUT/$1.oci.tar"
  "${B[@]}" commit --quiet --rm --format oci "$ctr" "oci-archive:$OUT/$1.oci.tar:$2" >/dev/null
  say "$OUT/$1.oci.tar ($2, $(($(stat -c %s "$OUT/$1.oci.tar") / 1024)) KiB)"
}
image pause "$PAUSE_IMAGE" 65535:65535
image burner "$BURNER_IMAGE" 65532:65532
