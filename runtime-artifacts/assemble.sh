#!/usr/bin/env bash
# Lays out the installer images (one per build: crun-wasmedge, crun-wasmtime, crun-wasm-nodejs) and the test
# images, and builds them (step 6 of build-image.sh, which passes the cached components). Separate so that its
# whole output is one cache entry keyed by every input.
#
#   assemble.sh OUT SYSROOT CRUN_WASMTIME CRUN_WASMEDGE CRUN_WASM_NODEJS LIBWASMTIME BUNDLE PACKAGES AGENT ARCH
#
# ARCH (amd64, arm64) is the architecture of every ELF given and of the sysroot; the images are linux/ARCH.
#
# OUT/context/rootfs/        every file any installer image has, laid out once:
#   usr/bin/node, usr/bin/nsenter, usr/lib/<triplet>/*           the image's own userland (trixie; links into
#                                                                /vendor/lib for the libraries both use)
#   usr/local/lib/knawd-installer.js                             the installer bundle
#   usr/local/bin/knawd-agent                                    the pod's long-running process (static)
#   vendor/                                                      what the installer copies to hosts:
#     lib/<soname>           one hermetic host userland: trixie's loader and libraries, libwasmtime.so, libwasmedge.so.0,
#                            libnode.so.115
#     lib/nodejs/…           the built-in JavaScript libnode reads from /usr/share/nodejs (bind-mounted there by crun)
#     crun-wasmtime/crun     crun-wasmedge/crun     crun-wasm-nodejs/crun
# OUT/layers/base/           layer 1 of every installer image of ARCH, byte-identical in the three: the image's own
#                            userland, the bundle, the agent, and the /vendor/lib files that userland links to
#                            (with lib/nodejs)
# OUT/layers/<build>/        layer 2 of that build's image: vendor/<build>/crun, the vendor/lib files only it needs,
#                            vendor/artifacts.json and vendor/SHA256SUMS naming that build only
# OUT/knawd-deployer-<build>.oci.tar, OUT/wasi-hello.oci.tar, OUT/wasm-http.oci.tar, OUT/image.json
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
OUT="$1" SYSROOT="$2" CRUN_WT="$3" CRUN_WE="$4" CRUN_NODE="$5" LIBWASMTIME="$6" BUNDLE="$7" PACKAGES="$8" AGENT="$9" ARCH="${10}"
# shellcheck source=runtime-artifacts/image.env
. "$HERE/image.env"
export SOURCE_DATE_EPOCH

die() { echo "assemble: error: $*" >&2; exit 1; }

# The prefix as it is written into every shipped ELF: the default, padded with "/" to a fixed length.
PADDED="$HOST_PREFIX"
while ((${#PADDED} < HOST_PREFIX_PADDED_LENGTH)); do PADDED+=/; done
case "$ARCH" in
  amd64) GNU=x86_64-linux-gnu LOADER=ld-linux-x86-64.so.2 ;;
  arm64) GNU=aarch64-linux-gnu LOADER=ld-linux-aarch64.so.1 ;;
  *) die "no image for architecture $ARCH" ;;
esac
LIBDIRS=("$SYSROOT/usr/lib/$GNU" "$SYSROOT/lib/$GNU" "$SYSROOT/usr/lib64")

CTX="$OUT/context"
ROOTFS="$CTX/rootfs"
VENDOR="$ROOTFS/vendor"
mkdir -p "$VENDOR/lib" "$VENDOR/crun-wasmtime" "$VENDOR/crun-wasmedge" "$VENDOR/crun-wasm-nodejs"

needed() { readelf -d "$1" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
find_lib() { # SONAME: the real file in the sysroot
  local d
  for d in "${LIBDIRS[@]}"; do
    if [[ -e "$d/$1" ]]; then readlink -f "$d/$1"; return 0; fi
  done
  return 1
}

# closure LIST_FILE ELF...: appends "soname<TAB>file" for every library the ELFs need, transitively.
closure() {
  local list="$1"; shift
  local queue=("$@") f n file
  while ((${#queue[@]})); do
    f="${queue[0]}"; queue=("${queue[@]:1}")
    while read -r n; do
      [[ -n "$n" ]] || continue
      awk -F'\t' -v n="$n" '$1 == n { found = 1 } END { exit !found }' "$list" && continue
      file="$(find_lib "$n")" || die "$n (needed by $(basename "$f")) is in none of the packages of image.env"
      printf '%s\t%s\n' "$n" "$file" >>"$list"
      queue+=("$file")
    done < <(needed "$f")
  done
}

# ---------------------------------------------------------------- /vendor: the hermetic host userland
WASMEDGE_LIB="$(find_lib libwasmedge.so.0)" || die "libwasmedge.so.0 is not in the packages"
LIBNODE_LIB="$(find_lib libnode.so.115)" || die "libnode.so.115 is not in the packages"
cp "$CRUN_WT" "$VENDOR/crun-wasmtime/crun"
cp "$CRUN_WE" "$VENDOR/crun-wasmedge/crun"
cp "$CRUN_NODE" "$VENDOR/crun-wasm-nodejs/crun"
cp "$LIBWASMTIME" "$VENDOR/lib/libwasmtime.so"
cp "$WASMEDGE_LIB" "$VENDOR/lib/libwasmedge.so.0"
cp "$LIBNODE_LIB" "$VENDOR/lib/libnode.so.115"
for build in $INSTALLER_BUILDS; do
  case $build in
    crun-wasmtime) engine=libwasmtime.so ;;
    crun-wasmedge) engine=libwasmedge.so.0 ;;
    crun-wasm-nodejs) engine=libnode.so.115 ;;
  esac
  list="$OUT/$build.libs"
  : >"$list"
  # crun dlopen()s its engine: not a DT_NEEDED, so it is named here.
  closure "$list" "$VENDOR/$build/crun" "$VENDOR/lib/$engine"
  printf '%s\t%s\n' "$engine" "$VENDOR/lib/$engine" >>"$list"
  cut -f1 "$list" | grep -qxF "$LOADER" || die "$build: no $LOADER in the closure"
done
sort -u "$OUT"/crun-*.libs | while IFS=$'\t' read -r soname file; do
  [[ -e "$VENDOR/lib/$soname" ]] || cp "$file" "$VENDOR/lib/$soname"
done
chmod 0755 "$VENDOR"/crun-*/crun
find "$VENDOR/lib" -maxdepth 1 -type f -exec chmod 0644 {} +
chmod 0755 "$VENDOR/lib/$LOADER"

# Every ELF but the loader: RUNPATH = <padded prefix>/lib when it needs anything (so every DT_NEEDED, and every
# dlopen() by name from it, resolves there and never through the host's ld.so.cache); executables also get
# PT_INTERP = <padded prefix>/lib/<the loader>. Absolute, because crun re-executes itself from a sealed
# memfd in a constructor (src/libcrun/linux.c libcrun_rexec), where $ORIGIN is "/".
for f in "$VENDOR"/crun-*/crun "$VENDOR"/lib/*; do
  [[ "$(basename "$f")" == "$LOADER" || -d "$f" ]] && continue
  if [[ -n "$(needed "$f")" ]]; then patchelf --set-rpath "$PADDED/lib" "$f"; fi
  if readelf -l "$f" | grep -q 'Requesting program interpreter'; then patchelf --set-interpreter "$PADDED/lib/$LOADER" "$f"; fi
done

# The JavaScript Debian's libnode reads by absolute path from /usr/share/nodejs at run time, inside the container
# (crun-wasm-nodejs bind-mounts <prefix>/lib/nodejs there): the paths libnode names, and a missing one fails.
: >"$OUT/nodejs.files"
strings "$LIBNODE_LIB" | grep '^/usr/share/nodejs/.*\.js$' | LC_ALL=C sort -u | while read -r js; do
  [[ -f "$SYSROOT$js" ]] || die "libnode loads $js, which none of the packages of image.env ships"
  rel="lib/nodejs/${js#/usr/share/nodejs/}"
  mkdir -p "$VENDOR/$(dirname "$rel")"
  cp "$SYSROOT$js" "$VENDOR/$rel"
  chmod 0644 "$VENDOR/$rel"
  echo "$rel" >>"$OUT/nodejs.files"
done
[[ -s "$OUT/nodejs.files" ]] || die "libnode.so.115 names no JavaScript under /usr/share/nodejs: the handler's bind mount would be empty"

# ---------------------------------------------------------------- the image's own userland
mkdir -p "$ROOTFS/usr/bin" "$ROOTFS/usr/lib/$GNU" "$ROOTFS/usr/local/lib" "$ROOTFS/tmp"
chmod 1777 "$ROOTFS/tmp"
ln -s usr/lib "$ROOTFS/lib"
# The loader where the image's own ELFs' PT_INTERP names it (/lib64/ld-linux-x86-64.so.2, /lib/ld-linux-aarch64.so.1).
if [[ "$ARCH" == amd64 ]]; then
  mkdir -p "$ROOTFS/usr/lib64"
  ln -s usr/lib64 "$ROOTFS/lib64"
fi
ln -s usr/bin "$ROOTFS/bin"
cp "$SYSROOT/usr/bin/nsenter" "$ROOTFS/usr/bin/nsenter"
cp "$(readlink -f "$SYSROOT/usr/bin/node")" "$ROOTFS/usr/bin/node"
rootlist="$OUT/rootfs.libs"
: >"$rootlist"
closure "$rootlist" "$ROOTFS/usr/bin/node" "$ROOTFS/usr/bin/nsenter"
# One copy in the image of what the installer's Node.js and crun-wasm-nodejs both use (libnode, ICU, OpenSSL, libc,
# ...): a library /vendor/lib has (the same file of the same package, only its RUNPATH set to the host prefix, which
# does not exist in the image, so its dependencies resolve from here as ever) is a link to it.
while IFS=$'\t' read -r soname file; do
  if [[ -f "$VENDOR/lib/$soname" ]]; then
    ln -s "../../../vendor/lib/$soname" "$ROOTFS/usr/lib/$GNU/$soname"
  else
    cp "$file" "$ROOTFS/usr/lib/$GNU/$soname"
  fi
done <"$rootlist"
if [[ "$ARCH" == amd64 ]]; then ln -s "../lib/$GNU/$LOADER" "$ROOTFS/usr/lib64/$LOADER"; else ln -s "$GNU/$LOADER" "$ROOTFS/usr/lib/$LOADER"; fi
# The JavaScript Debian's libnode loads from /usr/share/nodejs (it fails to start without cjs-module-lexer): links
# to the copies in /vendor/lib/nodejs.
while read -r rel; do
  js="/usr/share/nodejs/${rel#lib/nodejs/}"
  mkdir -p "$ROOTFS$(dirname "$js")"
  ln -s "$(realpath -m --relative-to="$ROOTFS$(dirname "$js")" "$VENDOR/$rel")" "$ROOTFS$js"
done <"$OUT/nodejs.files"
cp "$BUNDLE" "$ROOTFS/usr/local/lib/knawd-installer.js"
chmod 0644 "$ROOTFS/usr/local/lib/knawd-installer.js"
mkdir -p "$ROOTFS/usr/local/bin"
cp "$AGENT" "$ROOTFS/usr/local/bin/knawd-agent"
chmod 0755 "$ROOTFS/usr/local/bin/knawd-agent"

# ---------------------------------------------------------------- the layers
# Layer 1: the tree without /vendor's builds; of /vendor/lib only what the image's own userland links to.
LAYERS="$OUT/layers"
BASE="$LAYERS/base"
mkdir -p "$LAYERS"
cp -a "$ROOTFS" "$BASE"
rm -rf "$BASE"/vendor/crun-*
cut -f1 "$rootlist" | LC_ALL=C sort -u >"$OUT/base.libs"
find "$BASE/vendor/lib" -maxdepth 1 -type f -printf '%f\n' | while read -r soname; do
  grep -qxF "$soname" "$OUT/base.libs" || rm "$BASE/vendor/lib/$soname"
done
# Layer 2 of each build: its crun, the libraries of its closure layer 1 lacks, and its artifacts.json + SHA256SUMS.
for build in $INSTALLER_BUILDS; do
  layer="$LAYERS/$build"
  mkdir -p "$layer/vendor/$build" "$layer/vendor/lib"
  cp -a "$VENDOR/$build/crun" "$layer/vendor/$build/crun"
  cut -f1 "$OUT/$build.libs" | LC_ALL=C sort -u | while read -r soname; do
    [[ -e "$BASE/vendor/lib/$soname" ]] || cp -a "$VENDOR/lib/$soname" "$layer/vendor/lib/$soname"
  done
  data=-
  [[ "$build" != crun-wasm-nodejs ]] || data="$OUT/nodejs.files"
  (cd "$REPO" && CRUN_VERSION="$CRUN_VERSION" WASMTIME_VERSION="$WASMTIME_VERSION" node_modules/.bin/ts-node --transpile-only runtime-artifacts/vendor-manifest.ts \
    "$VENDOR" "$layer/vendor" "$build" "$OUT/$build.libs" "$data" "$PACKAGES" "$PADDED")
  # What the image's /vendor is once both layers are unpacked: every file SHA256SUMS lists is there and matches.
  merged="$OUT/merged-$build"
  cp -a "$BASE/vendor" "$merged" && cp -a "$layer/vendor/." "$merged/"
  (cd "$merged" && sha256sum --quiet -c SHA256SUMS) || die "$build: SHA256SUMS does not check against the two layers"
  rm -rf "$merged"
done

# ---------------------------------------------------------------- images
mkdir -p "$OUT/wasi/rootfs"
wat2wasm "$HERE/local/hello.wat" -o "$OUT/wasi/rootfs/hello.wasm"
chmod 0755 "$OUT/wasi/rootfs/hello.wasm"
# The service module: C on Debian's wasi-libc; -s keeps names and build paths out of the module.
mkdir -p "$OUT/wasm-http/rootfs"
clang-14 --target=wasm32-wasi -O2 -Wall -Wextra -Werror -s "$HERE/wasm-http/http.c" -o "$OUT/wasm-http/rootfs/http.wasm"
chmod 0755 "$OUT/wasm-http/rootfs/http.wasm"
# Fixed mtimes on everything that goes into a layer (buildah --timestamp sets the image dates).
find "$LAYERS" "$OUT/wasi" "$OUT/wasm-http" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

bash "$HERE/oci-layer.sh" "$BASE" "$LAYERS/base.tar.gz"
for build in $INSTALLER_BUILDS; do
  bash "$HERE/oci-layer.sh" "$LAYERS/$build" "$LAYERS/$build.tar.gz"
  (cd "$REPO" && node_modules/.bin/ts-node --transpile-only runtime-artifacts/layered-image.ts "$ARCH" "$IMAGE_NAME-$build" "$OUT/knawd-deployer-$build.oci.tar" \
    "$LAYERS/base.tar.gz" "$LAYERS/$build.tar.gz")
done
bash "$HERE/buildah-build.sh" "$HERE/Containerfile.wasi-hello" "$OUT/wasi" "$WASI_TEST_IMAGE_NAME" "$OUT/wasi-hello.oci.tar" "linux/$ARCH"
bash "$HERE/buildah-build.sh" "$HERE/wasm-http/Containerfile" "$OUT/wasm-http" "$WASM_SERVICE_IMAGE_NAME" "$OUT/wasm-http.oci.tar" "linux/$ARCH"

(cd "$REPO" && node_modules/.bin/ts-node --transpile-only runtime-artifacts/image-record.ts "$OUT" "$PACKAGES" $INSTALLER_BUILDS)
# The trees are in the archives now (the cache keeps what the tests and the indexes read).
rm -rf "$CTX" "$LAYERS"
