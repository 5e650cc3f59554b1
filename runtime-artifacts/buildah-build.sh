#!/usr/bin/env bash
# One image, reproducibly: buildah builds CONTAINERFILE with CONTEXT (FROM scratch + COPY, nothing runs) in a
# storage of its own, and writes it as an OCI archive whose index names it NAME.
#
#   buildah-build.sh CONTAINERFILE CONTEXT NAME ARCHIVE PLATFORM   (PLATFORM: linux/amd64, linux/arm64)
#
# --timestamp $SOURCE_DATE_EPOCH fixes the image's created/history dates and the layer's file times; the
# context's files already carry that mtime, and COPY writes them in name order, so one commit gives one digest.
set -euo pipefail
file="$1" context="$2" name="$3" archive="$4" platform="$5"
: "${SOURCE_DATE_EPOCH:?SOURCE_DATE_EPOCH must be set}"
store="$(mktemp -d "${TMPDIR:-/tmp}/knawd-buildah.XXXXXX")"
trap 'buildah "${opts[@]}" rmi -af >/dev/null 2>&1 || true; rm -rf "$store"' EXIT
opts=(--root "$store/root" --runroot "$store/run" --storage-driver vfs)
tag="localhost/knawd-build/$(basename "$archive" .oci.tar):build"
buildah "${opts[@]}" build --quiet --format oci --platform "$platform" --timestamp "$SOURCE_DATE_EPOCH" \
  --layers=false --network none -f "$file" -t "$tag" "$context" >/dev/null
rm -f "$archive"
buildah "${opts[@]}" push --quiet --format oci --disable-compression=false "$tag" "oci-archive:$archive:$name"
