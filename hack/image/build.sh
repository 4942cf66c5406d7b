#!/usr/bin/env bash
# hack/image/build.sh [BINARY]: the operator's OCI image, built offline with buildah, from scratch.
#
# No base image is pulled: the image holds the files listed in hack/image/files (the binary, CA
# certificates, passwd and group entries for UID 65532) and, when BINARY is dynamically linked,
# exactly the shared libraries `ldd` names, with the loader. It runs as 65532:65532, entrypoint
# /ferroscale, command `run`, and carries the OCI labels version, source and revision.
# Writes target/image/ferroscale-VERSION.oci.tar (an OCI archive, reference
# ghcr.io/ferroscale/ferroscale:VERSION), checks the files in its layer against the list, and
# prints its size. `make image` builds the release binary first and runs this.
#
# Environment: IMAGE_REPOSITORY [ghcr.io/ferroscale/ferroscale], IMAGE_OUT [target/image].
set -euo pipefail
cd "$(dirname "$0")/../.."

BINARY=${1:-target/release/ferroscale}
OUT=${IMAGE_OUT:-target/image}
REPOSITORY=${IMAGE_REPOSITORY:-ghcr.io/ferroscale/ferroscale}
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
SOURCE=$(sed -n 's/^repository = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)
ARCHIVE="$OUT/ferroscale-$VERSION.oci.tar"
ROOTFS="$OUT/rootfs"

die() { echo "image: $*" >&2; exit 1; }
command -v buildah >/dev/null || die "buildah not found (apt-get install buildah)"
[ -x "$BINARY" ] || die "$BINARY missing: build it first (cargo build --release -p ferroscale)"
[ -n "$VERSION" ] && [ -n "$SOURCE" ] || die "no version or repository in Cargo.toml"

# ---- stage the root filesystem -------------------------------------------------------------------
rm -rf "$ROOTFS"
mkdir -p "$ROOTFS"
expected=()
stage() {   # stage SRC DEST
  mkdir -p "$ROOTFS$(dirname "$2")"
  cp -L "$1" "$ROOTFS$2"
  expected+=("$2")
}
while read -r dest src; do
  case "$dest" in ''|'#'*) continue ;; esac
  case "$src" in
    binary) stage "$BINARY" "$dest" ;;
    host:*) stage "${src#host:}" "$dest" ;;
    *) stage "$src" "$dest" ;;
  esac
done <hack/image/files

# Shared libraries: each absolute path ldd prints (NAME => /path, and the loader on its own).
if ldd "$BINARY" >/dev/null 2>&1; then
  while read -r lib; do
    stage "$lib" "$lib"
  done < <(ldd "$BINARY" | sed -n -e 's/.*=> \(\/[^ ]*\) .*/\1/p' -e 's/^[[:space:]]*\(\/[^ ]*\) (0x.*/\1/p')
fi
# Symbols off (release builds carry no debug info): a quarter of the size.
strip --strip-all "$ROOTFS/ferroscale"
chmod 0755 "$ROOTFS/ferroscale"
chmod 0644 "$ROOTFS/etc/passwd" "$ROOTFS/etc/group" "$ROOTFS/etc/ssl/certs/ca-certificates.crt"

# ---- build with a private store, so nothing is left in /var/lib/containers -----------------------
STORE="$OUT/storage"
B=(buildah --root "$STORE/root" --runroot "$STORE/run" --storage-driver vfs)
rm -rf "$ARCHIVE"
ctr=$("${B[@]}" from scratch)
trap '"${B[@]}" rm "$ctr" >/dev/null 2>&1 || true; rm -rf "$STORE"' EXIT
"${B[@]}" copy "$ctr" "$ROOTFS/" / >/dev/null
"${B[@]}" config \
  --user 65532:65532 \
  --entrypoint '["/ferroscale"]' \
  --cmd run \
  --port 8080/tcp \
  --workingdir / \
  --label org.opencontainers.image.title=ferroscale \
  --label "org.opencontainers.image.version=$VERSION" \
  --label "org.opencontainers.image.source=$SOURCE" \
  --label "org.opencontainers.image.revision=$REVISION" \
  --label org.opencontainers.image.licenses=Apache-2.0 \
  "$ctr"
"${B[@]}" commit --quiet --format oci "$ctr" "oci-archive:$ARCHIVE:$REPOSITORY:$VERSION" >/dev/null

# ---- check what the archive holds against what was staged ----------------------------------------
python3 - "$ARCHIVE" "${expected[@]}" <<'EOF'
import io, json, sys, tarfile
archive, expected = sys.argv[1], set(sys.argv[2:])
with tarfile.open(archive) as t:
    blob = lambda d: t.extractfile("blobs/" + d.replace(":", "/")).read()
    index = json.loads(t.extractfile("index.json").read())
    manifest = json.loads(blob(index["manifests"][0]["digest"]))
    config = json.loads(blob(manifest["config"]["digest"]))["config"]
    files = set()
    for layer in manifest["layers"]:
        with tarfile.open(fileobj=io.BytesIO(blob(layer["digest"]))) as lt:
            files |= {"/" + m.name.lstrip("./") for m in lt.getmembers() if not m.isdir()}
problems = []
if files != expected:
    problems.append(f"files: extra {sorted(files - expected)}, missing {sorted(expected - files)}")
if config.get("User") != "65532:65532" or config.get("Entrypoint") != ["/ferroscale"] or config.get("Cmd") != ["run"]:
    problems.append(f"config: {config}")
if problems:
    sys.exit("image: the archive is not what was staged: " + "; ".join(problems))
EOF

size=$(stat -c %s "$ARCHIVE")
echo "image: $ARCHIVE ($REPOSITORY:$VERSION, ${#expected[@]} files, $((size / 1024)) KiB = $size bytes)"
