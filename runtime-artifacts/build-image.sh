#!/usr/bin/env bash
# Builds the installer images (one per build: IMAGE_NAME-<build>) and the test images (entry point of `npm run image`), for each architecture of
# IMAGE_ARCHES (image.env: linux/amd64 natively, linux/arm64 cross-compiled), as OCI archives under build/image/,
# from nothing but the package registries:
#
#   crun 1.21 (trixie's source package) ─┬─ our crun-patches/ applied, built three times on bookworm: --with-wasmtime,
#   wasmtime C API 26.0.1 (crates.io) ───┤   --with-wasmedge, and with our wasm_nodejs handler (crun-patches/0004)
#   libwasmedge0 0.14.1 (trixie .deb) ───┤
#   libnode115 (trixie .deb, Node 20) ───┤
#   trixie's shared objects (.debs) ─────┴─ /vendor: one hermetic host userland (own loader and libraries),
#                                           every ELF's PT_INTERP and RUNPATH under the padded host prefix
#   Node.js 20, nsenter (trixie .debs), the installer bundle ── the image's own userland
#   knawd-agent (runtime-artifacts/agent, C, static with bookworm's musl-gcc) ── the pod's long-running process
#   layered-image.ts: per build an image of two layers, layer 1 (all but the builds) shared by the three
#
# Output (build/image/, or $KNAWD_IMAGE_OUT):
#   knawd-deployer-<build>.oci.tar   the installer images     wasi-hello.oci.tar, wasm-http.oci.tar   the test images
#   image.json               digests, names, versions (amd64's, every architecture's, the indexes')
#   <arch>/                  the same for every other architecture (arm64/knawd-deployer-crun-wasmtime.oci.tar, ...)
#   index/                   one OCI image index per image over the architectures; each installer index also
#                            lists the unbuilt architectures' image (<arch>/knawd-deployer-unbuilt.oci.tar, unbuilt.json)
# and lib/catalog/{wasi-test-image,wasm-service-image}.json (those images' index digests, read by the constructs).
#
# Every component build is cached in ${KNAWD_TOOLS_CACHE:-~/.cache/knawd-deployer}/<name>-<key>/ (a .complete
# marker, a flock per entry, built in a .partial sibling), keyed by versions; the assembled images too, keyed by
# a hash of every input. A warm run only re-bundles the installer, hashes the inputs and copies two archives.
#   KNAWD_IMAGE_REBUILD=all|<entry name>   rebuild (e.g. crun-wasmedge); KNAWD_IMAGE_VERIFY=1 assembles the
#   images a second time (not cached) from the same components and fails unless the digests are equal.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
CACHE="${KNAWD_TOOLS_CACHE:-$HOME/.cache/knawd-deployer}"
OUT="${KNAWD_IMAGE_OUT:-$REPO/build/image}"
REBUILD=" ${KNAWD_IMAGE_REBUILD:-} "
START=$SECONDS

say() { echo "image: $*"; }
die() { echo "image: error: $*" >&2; exit 1; }

# shellcheck source=runtime-artifacts/image.env
. "$HERE/image.env"
export SOURCE_DATE_EPOCH
[[ "$(uname -m)" == x86_64 ]] || die "this build runs on an x86_64 Debian machine (amd64 natively, other architectures cross-compiled)"
command -v apt-get >/dev/null || die "apt-get is missing: the build takes its packages from Debian"
mkdir -p "$CACHE/logs" "$OUT"

# ---------------------------------------------------------------- helpers

want_rebuild() { [[ "$REBUILD" == *" all "* || "$REBUILD" == *" $1 "* ]]; }

# cached NAME KEY BUILD_FUNCTION: the entry $CACHE/NAME-KEY, built by BUILD_FUNCTION DIR into a .partial sibling
# that is renamed into place once complete. Sets ENTRY.
cached() {
  local name="$1" key="$2" build="$3"
  local dir="$CACHE/$name-$key" log="$CACHE/logs/$name-$key.log" lockfd
  ENTRY="$dir"
  if [[ -f "$dir/.complete" ]] && ! want_rebuild "$name"; then say "$name $key: cached"; return 0; fi
  exec {lockfd}>"$CACHE/.$name-$key.lock"
  flock -n "$lockfd" || { say "$name $key: another run is building it, waiting..."; flock "$lockfd"; }
  if [[ -f "$dir/.complete" ]] && ! want_rebuild "$name"; then exec {lockfd}>&-; say "$name $key: cached"; return 0; fi
  local tmp="$dir.partial" t0=$SECONDS
  rm -rf "$tmp" && mkdir -p "$tmp"
  say "$name $key: building (log: $log) ..."
  # Not in a condition: errexit must stay on inside the build function.
  local rc=0
  set +e
  (set -e; "$build" "$tmp") >"$log" 2>&1
  rc=$?
  set -e
  if ((rc != 0)); then
    tail -n 30 "$log" | sed 's/^/    /' >&2
    die "$name $key: build failed (full log: $log)"
  fi
  touch "$tmp/.complete"
  rm -rf "$dir" && mv "$tmp" "$dir"
  exec {lockfd}>&-
  say "$name $key: built in $((SECONDS - t0))s"
}

apt_install_missing() { # PACKAGE...: bookworm packages the build runs
  local missing=() p
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
  ((${#missing[@]} == 0)) && return 0
  [[ $(id -u) -eq 0 ]] || die "missing Debian packages ${missing[*]}: run as root"
  say "apt: installing ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

hash_of() { sha256sum | cut -c1-16; }

# arch_facts ARCH: what the steps need to know of one architecture of IMAGE_ARCHES. amd64 is built natively; any
# other is cross-compiled with Debian's cross gcc and rustup's target, against the target's own trixie packages
# (the sysroot of step 1), and what must run at build time runs under qemu-user (trixie's qemu-user, step 0b).
arch_facts() {
  ARCH="$1"
  case "$ARCH" in
    amd64) GNU=x86_64-linux-gnu LOADER=ld-linux-x86-64.so.2 RUST_TARGET=x86_64-unknown-linux-gnu QEMU_NAME="" SUFFIX="" ;;
    arm64) GNU=aarch64-linux-gnu LOADER=ld-linux-aarch64.so.1 RUST_TARGET=aarch64-unknown-linux-gnu QEMU_NAME=qemu-aarch64 SUFFIX=-arm64 ;;
    *) die "IMAGE_ARCHES: no build for $ARCH (amd64 and arm64 are built)" ;;
  esac
  CROSS=0
  [[ "$ARCH" == amd64 ]] || CROSS=1
}

# run_built FILE ARGS...: runs a binary built for $ARCH on this machine. Another architecture's runs under
# qemu-user with the sysroot's loader; crun re-executes itself from a sealed memfd unless its own file lies on a
# read-only mount, and qemu-user cannot execute that copy, so the file's directory is bind-mounted read-only in a
# mount namespace of its own first (nothing is registered with binfmt_misc).
run_built() {
  if ((CROSS == 0)); then "$@"; return; fi
  QEMU_LD_PREFIX="$SYSROOT" unshare --mount --propagation private bash -c \
    'd="$(dirname "$1")"; mount --bind "$d" "$d" && mount -o remount,bind,ro "$d" && exec "$0" "$@"' "$QEMU_DIR/$QEMU_NAME" "$@"
}

# ---------------------------------------------------------------- 0. build machine
CROSS_TOOLS=()
for arch in $IMAGE_ARCHES; do
  arch_facts "$arch"
  ((CROSS == 0)) || CROSS_TOOLS+=("gcc-$GNU" "libc6-dev-$ARCH-cross")
done
apt_install_missing gcc make pkg-config gperf python3 libsystemd-dev libseccomp-dev libcap-dev libyajl-dev \
  dpkg-dev cmake patchelf buildah wabt binutils file musl-tools patch \
  wasi-libc clang-14 lld-14 libclang-rt-14-dev-wasm32 "${CROSS_TOOLS[@]}"
command -v cargo >/dev/null || die "cargo is missing (rustup's cargo >= 1.78; bookworm's own is too old)"
for arch in $IMAGE_ARCHES; do
  arch_facts "$arch"
  ((CROSS == 0)) || rustup target list --installed | grep -qx "$RUST_TARGET" || rustup target add "$RUST_TARGET" >/dev/null ||
    die "rustup target add $RUST_TARGET failed (the wasmtime C API is cross-compiled for $ARCH with it)"
done

# trixie through an apt configuration of its own per architecture (sources, lists, cache under the cache root):
# nothing of the machine's apt setup is read or changed, so nothing can ever be installed from it. Its lists are
# fetched once (versions then stay as resolved; KNAWD_IMAGE_APT_UPDATE=1 refreshes them).
apt_use() { # ARCH: the apt configuration of that architecture's trixie, its lists fetched
  APT_DIR="$CACHE/apt-$SHIP_SUITE$SUFFIX"
  APT_OPTS=(-o "Dir::Etc::SourceList=$APT_DIR/sources.list" -o "Dir::Etc::SourceParts=$APT_DIR/none"
    -o "Dir::Etc::Preferences=$APT_DIR/none" -o "Dir::Etc::PreferencesParts=$APT_DIR/none"
    -o "Dir::State::Lists=$APT_DIR/lists" -o "Dir::State::status=$APT_DIR/none/status" -o "Dir::Cache=$APT_DIR/cache" -o "APT::Architecture=$ARCH"
    -o "Debug::NoLocking=1" -o "APT::Sandbox::User=root")
  ((CROSS == 0)) || APT_OPTS+=(-o "APT::Architectures::=$ARCH")
  # An empty dpkg status: the machine's installed packages (a newer nodejs, say) must never be apt's candidate.
  mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial" "$APT_DIR/none"
  : >"$APT_DIR/none/status"
  printf '%s\n' "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $SHIP_SUITE main" \
    "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $SHIP_SUITE main" >"$APT_DIR/sources.list"
  if [[ ! -f "$APT_DIR/lists/.updated" || "${KNAWD_IMAGE_APT_UPDATE:-0}" == 1 ]]; then
    say "apt: fetching Debian $SHIP_SUITE's lists ($ARCH) into $APT_DIR"
    (exec {lk}>"$APT_DIR/.lock"; flock "$lk"; apt_ship -q update >"$CACHE/logs/apt-$SHIP_SUITE$SUFFIX.log" 2>&1 && touch "$APT_DIR/lists/.updated") ||
      die "apt-get update for $SHIP_SUITE ($ARCH) failed (log: $CACHE/logs/apt-$SHIP_SUITE$SUFFIX.log)"
  fi
}
apt_ship() { apt-get "${APT_OPTS[@]}" "$@"; }
apt_cache_ship() { apt-cache "${APT_OPTS[@]}" "$@"; }

# ---------------------------------------------------------------- 0b. qemu-user (trixie's: static, 10.0)
# Runs another architecture's binaries here, at build time and in test/image. Not bookworm's qemu-user-static
# (7.2): it refuses crun's prctl(PR_SET_CHILD_SUBREAPER). Only the emulators of IMAGE_ARCHES are kept.
build_qemu() {
  local out="$1" v sum deb arch
  read -r v sum < <(apt_cache_ship show --no-all-versions qemu-user 2>/dev/null | awk '/^Version: /{v=$2} /^SHA256: /{print v, $2}')
  [[ -n "$sum" ]] || { echo "qemu-user is not in Debian $SHIP_SUITE's index"; return 1; }
  (cd "$out" && apt_ship download -q "qemu-user=$v")
  deb="$(ls "$out"/qemu-user_*.deb)"
  [[ "$(sha256sum <"$deb" | cut -d' ' -f1)" == "$sum" ]] || { echo "$deb: sha256 differs from Debian's index"; return 1; }
  dpkg-deb -x "$deb" "$out/x"
  mkdir -p "$out/bin"
  for arch in $IMAGE_ARCHES; do
    arch_facts "$arch"
    if ((CROSS == 1)); then cp "$out/x/usr/bin/$QEMU_NAME" "$out/bin/"; fi
  done
  echo "qemu-user $v" >"$out/VERSION"
  rm -rf "$out/x" "$deb"
}

# ---------------------------------------------------------------- 1. Debian trixie binary packages (per architecture)
# The exact versions trixie's index offers now, with the sha256 the signed index gives for each .deb.
# Resolved once per fetch of the lists (apt-cache reads the whole index: seconds on a busy machine). A
# cross-compiled architecture's set also has the headers and link libraries crun is built against (CROSS_DEBS).
step_debs() {
  local want="$VENDOR_DEBS $ROOTFS_DEBS $BUILD_DEBS" p
  ((CROSS == 0)) || want+=" $CROSS_DEBS"
  RESOLVED="$APT_DIR/resolved-$(hash_of <<<"$want")"
  if [[ -f "$RESOLVED" && "$RESOLVED" -nt "$APT_DIR/lists/.updated" ]]; then
    DEB_LIST="$(cat "$RESOLVED")"
  else
    # The candidate version of each (an index may list a package twice, as trixie's arm64 one does linux-libc-dev).
    DEB_LIST="$(
      apt_cache_ship show --no-all-versions $want 2>/dev/null |
        awk '/^Package: /{p=$2} /^Version: /{v=$2} /^SHA256: /{print p, v, $2}' | sort -u
    )"
    for p in $want; do
      awk -v p="$p" '$1 == p { found = 1 } END { exit !found }' <<<"$DEB_LIST" ||
        die "$p is not in Debian $SHIP_SUITE's index ($ARCH)"
    done
    printf '%s\n' "$DEB_LIST" >"$RESOLVED"
  fi
  cached "debs-$SHIP_SUITE$SUFFIX" "$(hash_of <<<"$DEB_LIST")" build_debs
  DEBS="$ENTRY"
  SYSROOT="$DEBS/root"
}
build_debs() {
  local out="$1" p v sum deb
  mkdir -p "$out/debs" "$out/root"
  while read -r p v sum; do
    (cd "$out/debs" && apt_ship download -q "$p=$v")
    deb="$(ls "$out/debs/${p}_${v//:/%3a}_"*.deb)"
    [[ "$(sha256sum <"$deb" | cut -d' ' -f1)" == "$sum" ]] || { echo "$deb: sha256 differs from Debian's index"; return 1; }
    dpkg-deb -x "$deb" "$out/root"
  done <<<"$DEB_LIST"
  # A sysroot to build and run against: its loader and link scripts name /lib/..., merged into /usr/lib.
  if ((CROSS == 1)); then ln -s usr/lib "$out/root/lib"; fi
  printf '%s\n' "$DEB_LIST" >"$out/PACKAGES"
}
deb_version() { awk -v p="$1" '$1 == p { print $2 }' "$DEBS/PACKAGES"; }

# ---------------------------------------------------------------- 2. crun source (trixie's source package)
build_crun_src() {
  local out="$1" want tarball="crun_${CRUN_VERSION}.orig.tar.gz"
  # showsrc lists every suite's record; the tarball's name carries the version.
  want="$(apt_cache_ship showsrc crun | awk -v f="$tarball" '/^Checksums-Sha256:/{s=1; next} /^[^ ]/{s=0} s && $3 == f {print $1; exit}')"
  [[ -n "$want" ]] || { echo "Debian $SHIP_SUITE's Sources index has no $tarball"; return 1; }
  # The upstream tarball is what we build; apt fetches the Debian packaging too, which the registry may not serve.
  (cd "$out" && apt_ship source -q --download-only crun) || true
  [[ -f "$out/$tarball" ]] || { echo "apt-get source did not fetch $tarball"; return 1; }
  [[ "$(sha256sum <"$out/$tarball" | cut -d' ' -f1)" == "$want" ]] || { echo "$tarball: sha256 differs from Debian's Sources index"; return 1; }
  tar -xzf "$out/$tarball" -C "$out"
  [[ -d "$out/crun-$CRUN_VERSION" ]] || { echo "$tarball has no crun-$CRUN_VERSION/"; return 1; }
  find "$out" -maxdepth 1 -type f ! -name "$tarball" -delete
}

# Our patches to crun (crun-patches/NNNN-name.patch, -p1 against crun-$CRUN_VERSION/), applied in lexical order
# to the source of both crun builds. Their names and contents key both builds: an edited patch rebuilds them.
CRUN_PATCHES=("$HERE"/crun-patches/*.patch)
[[ -e "${CRUN_PATCHES[0]}" ]] || CRUN_PATCHES=()
PATCHES_KEY="$( { for f in "${CRUN_PATCHES[@]}"; do basename "$f"; cat "$f"; done; } | hash_of)"
apply_crun_patches() { # SRC_DIR
  local f
  for f in "${CRUN_PATCHES[@]}"; do
    echo "applying $(basename "$f")"
    patch -d "$1" -p1 --forward --batch --no-backup-if-mismatch -s <"$f" || { echo "$(basename "$f") does not apply to crun $CRUN_VERSION"; return 1; }
  done
}

# ---------------------------------------------------------------- 3. crun, once per engine (per architecture)
# build_crun_with OUT HANDLER CONFIGURE_FLAG CPPFLAGS: crun's own binary only (no man pages, no python), without
# debug info, with paths of the build directory mapped away so that a rebuild gives the same bytes. Another
# architecture's is cross-compiled against the sysroot's trixie headers and libraries.
build_crun_with() {
  local out="$1" engine="$2" with="$3" cppflags="$4" src="$1/src" cross=() strip=strip
  if ((CROSS == 1)); then
    # Only the sysroot's headers and libraries: the cross gcc also searches its own tool directory (bookworm's
    # libc6-dev-<arch>-cross, which the wasmtime step links against) before the sysroot.
    local gcc_inc lib="$SYSROOT/usr/lib/$GNU"
    gcc_inc="$("$GNU-gcc" -print-file-name=include)"
    cross=(--host="$GNU" CC="$GNU-gcc --sysroot=$SYSROOT -nostdinc -isystem $gcc_inc -isystem $SYSROOT/usr/include/$GNU -isystem $SYSROOT/usr/include -B$lib/ -L$lib")
    strip="$GNU-strip"
    export PKG_CONFIG_LIBDIR="$SYSROOT/usr/lib/$GNU/pkgconfig:$SYSROOT/usr/share/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$SYSROOT"
  fi
  cp -a "$CRUN_SRC" "$src"
  apply_crun_patches "$src"
  (
    cd "$src"
    ./configure -q --disable-dependency-tracking $with --disable-criu "${cross[@]}" \
      CPPFLAGS="$cppflags" CFLAGS="-O2 -g0 -ffile-prefix-map=$src=. -fno-record-gcc-switches"
    make -s git-version.h
    # libocispec first: its generated headers are not ordered before crun's objects under -j.
    make -s -j"$(nproc)" -C libocispec
    make -s -j"$(nproc)" crun LDFLAGS="-Wl,-O1 -Wl,--build-id=sha1"
  )
  mkdir -p "$out/bin"
  cp "$src/crun" "$out/bin/crun"
  "$strip" "$out/bin/crun"
  rm -rf "$src"
  run_built "$out/bin/crun" --version | tee "$out/VERSION" | grep -q "+WASM:$engine" || { echo "crun lacks +WASM:$engine"; return 1; }
}
build_crun_wasmtime() { build_crun_with "$1" wasmtime --with-wasmtime "-I$WASMTIME/include"; }
build_crun_wasmedge() { build_crun_with "$1" wasmedge --with-wasmedge "-I$SYSROOT/usr/include"; }

# The wasm_nodejs handler (crun-patches/0004) dlopen()s libnode by soname: no headers, no configure switch (it is
# compiled in with HAVE_WASM_NODEJS). libnode reads its built-in JavaScript from files, which the handler
# bind-mounts into the container from <prefix>/lib/nodejs, a path written with the padded prefix (rewritten on
# install like PT_INTERP and RUNPATH).
PADDED="$HOST_PREFIX"
while ((${#PADDED} < HOST_PREFIX_PADDED_LENGTH)); do PADDED+=/; done
build_crun_wasm_nodejs() {
  build_crun_with "$1" wasm_nodejs "" "-DHAVE_WASM_NODEJS=1 -DWASM_NODEJS_LIBNODE=\\\"libnode.so.115\\\" -DWASM_NODEJS_BUILTINS_DIR=\\\"$PADDED/lib/nodejs\\\""
}

# What a cross-compiled build's key adds: the cross compiler's version (the target's libraries are in DEBS's key).
cross_key() { ((CROSS == 0)) || echo "-$ARCH-gcc-$("$GNU-gcc" -dumpfullversion)-$(basename "$DEBS")"; }

step_cruns() {
  cached "crun-wasmedge$SUFFIX" "$CRUN_VERSION-wasmedge-$(deb_version libwasmedge-dev)-patches-$PATCHES_KEY$(cross_key)" build_crun_wasmedge
  CRUN_WASMEDGE="$ENTRY"
  cached "crun-wasm-nodejs$SUFFIX" "$CRUN_VERSION-libnode-$(deb_version libnode115)-prefix-$(hash_of <<<"$PADDED")-patches-$PATCHES_KEY$(cross_key)" build_crun_wasm_nodejs
  CRUN_NODEJS="$ENTRY"
}

# ---------------------------------------------------------------- 4. wasmtime C API (crates.io, per architecture)
RUSTC_VERSION="$(rustc --version | awk '{print $2}')"
build_wasmtime() {
  local out="$1" target="$CACHE/work/wasmtime-capi-$WASMTIME_VERSION-rustc-$RUSTC_VERSION" release=release inc cross=()
  grep -q "\"=$WASMTIME_VERSION\"" "$HERE/wasmtime-capi/Cargo.toml" || { echo "wasmtime-capi/Cargo.toml does not pin $WASMTIME_VERSION"; return 1; }
  if ((CROSS == 1)); then
    target+="-${GNU%%-*}"
    release="$RUST_TARGET/release"
    cross=(--target "$RUST_TARGET")
    local triple="${RUST_TARGET//-/_}"
    export "CARGO_TARGET_${triple^^}_LINKER=$GNU-gcc" "CC_$triple=$GNU-gcc"
  fi
  target+=/target
  # The target dir is kept per version: a rebuild of this entry does not recompile wasmtime. Build paths are
  # remapped (build scripts' OUT_DIR paths end up in panic messages): the bytes do not depend on the cache root.
  CARGO_TARGET_DIR="$target" \
    RUSTFLAGS="--remap-path-prefix=$target=/target --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo --remap-path-prefix=$HERE=/src" \
    cargo build --release --locked "${cross[@]}" --manifest-path "$HERE/wasmtime-capi/Cargo.toml"
  mkdir -p "$out/lib" "$out/include"
  cp "$target/$release/libwasmtime.so" "$out/lib/"
  inc="$(ls -1dt "$target/$release"/build/wasmtime-c-api-impl-*/out/include | head -n1)"
  cp -r "$inc/." "$out/include/"
  # build.rs knows no WAT feature flag although the `wat` feature is on (wasmtime_wat2wasm is exported).
  sed -i 's|^/\* #undef WASMTIME_FEATURE_WAT \*/|#define WASMTIME_FEATURE_WAT|' "$out/include/wasmtime/conf.h"
  cargo --version >"$out/TOOLCHAIN"
}
step_wasmtime() {
  local key="$WASMTIME_VERSION-rustc-$RUSTC_VERSION"
  ((CROSS == 0)) || key+="-$RUST_TARGET-gcc-$("$GNU-gcc" -dumpfullversion)"
  cached "wasmtime-capi$SUFFIX" "$key" build_wasmtime
  WASMTIME="$ENTRY"
  cached "crun-wasmtime$SUFFIX" "$CRUN_VERSION-wasmtime-$WASMTIME_VERSION-patches-$PATCHES_KEY$(cross_key)" build_crun_wasmtime
  CRUN_WASMTIME="$ENTRY"
}

# ---------------------------------------------------------------- 5. the agent (static: the image has no libc for it)
# amd64: musl (bookworm's musl-gcc); another architecture: the cross gcc with its own static glibc (bookworm's
# libc6-dev-<arch>-cross; bookworm has no musl-gcc for it).
build_agent() {
  local out="$1" cc=(musl-gcc)
  ((CROSS == 0)) || cc=("$GNU-gcc")
  mkdir -p "$out/bin"
  "${cc[@]}" -static -std=c11 -Os -Wall -Wextra -Werror -ffile-prefix-map="$HERE=." -fno-record-gcc-switches \
    -Wl,--build-id=none -s -o "$out/bin/knawd-agent" "$HERE/agent/knawd-agent.c"
  file "$out/bin/knawd-agent" | grep -q 'statically linked' || { echo "knawd-agent is not static"; return 1; }
  # The probe's answers: 1 without the marker, 0 with it.
  if run_built "$out/bin/knawd-agent" ready "$out/no-such-marker"; then echo "knawd-agent ready: 0 without a marker"; return 1; fi
  run_built "$out/bin/knawd-agent" ready "$out/bin/knawd-agent" || { echo "knawd-agent ready: not 0 with a marker"; return 1; }
  if ((CROSS == 0)); then
    echo "musl-tools $(dpkg-query -W -f='${Version}' musl-tools), $(gcc -dumpfullversion)" >"$out/TOOLCHAIN"
  else
    echo "$GNU-gcc $("$GNU-gcc" -dumpfullversion), libc6-dev-$ARCH-cross $(dpkg-query -W -f='${Version}' "libc6-dev-$ARCH-cross")" >"$out/TOOLCHAIN"
  fi
}
step_agent() {
  local key
  if ((CROSS == 0)); then
    key="$(cat "$HERE/agent/knawd-agent.c" | hash_of)-musl-$(dpkg-query -W -f='${Version}' musl-tools)-gcc-$(gcc -dumpfullversion)"
  else
    key="$(cat "$HERE/agent/knawd-agent.c" | hash_of)-$ARCH-glibc-$(dpkg-query -W -f='${Version}' "libc6-dev-$ARCH-cross")-gcc-$("$GNU-gcc" -dumpfullversion)"
  fi
  cached "knawd-agent$SUFFIX" "$key" build_agent
  AGENT="$ENTRY/bin/knawd-agent"
}

# ---------------------------------------------------------------- 6. assemble (cached by every input, per architecture)
build_images() {
  bash "$HERE/assemble.sh" "$1" "$SYSROOT" "$CRUN_WASMTIME/bin/crun" "$CRUN_WASMEDGE/bin/crun" "$CRUN_NODEJS/bin/crun" "$WASMTIME/lib/libwasmtime.so" "$BUNDLE" "$DEBS/PACKAGES" "$AGENT" "$ARCH"
}
step_images() {
  local key
  key="$(
    {
      echo "$ARCH $DEBS $CRUN_WASMTIME $CRUN_WASMEDGE $CRUN_NODEJS $WASMTIME $AGENT"
      sha256sum "$BUNDLE" "$HERE/build-image.sh" "$HERE/image.env" "$HERE/layered-image.ts" "$HERE/oci-layer.sh" "$HERE/Containerfile.wasi-hello" \
        "$HERE/assemble.sh" "$HERE/buildah-build.sh" "$HERE/vendor-manifest.ts" "$HERE/image-record.ts" "$HERE/local/hello.wat" \
        "$HERE/wasm-http/http.c" "$HERE/wasm-http/Containerfile" "$REPO"/lib/catalog/*.ts |
        sed "s|$REPO/||"
      buildah --version
      clang-14 --version | head -n1
      dpkg-query -W -f='${Version}' wasi-libc
    } | hash_of
  )"
  cached "images$SUFFIX" "$key" build_images
  IMAGES="$ENTRY"
}

# ---------------------------------------------------------------- the steps, for each architecture
arch_facts amd64
apt_use
cached crun-src "$CRUN_VERSION" build_crun_src
CRUN_SRC="$ENTRY/crun-$CRUN_VERSION"
cached qemu-user "$SHIP_SUITE-$(apt_cache_ship show --no-all-versions qemu-user 2>/dev/null | awk '/^SHA256: /{print $2}' | cut -c1-16)-$(hash_of <<<"$IMAGE_ARCHES")" build_qemu
QEMU_DIR="$ENTRY/bin"

(cd "$REPO" && npm run -s bundle:installer) || die "npm run bundle:installer failed"
BUNDLE="$REPO/build/installer/knawd-installer.js"

declare -A IMAGES_OF
for arch in $IMAGE_ARCHES; do
  arch_facts "$arch"
  apt_use
  step_debs
  step_cruns
  step_wasmtime
  step_agent
  step_images
  IMAGES_OF[$ARCH]="$IMAGES"
done

# ---------------------------------------------------------------- 7. reproducibility check (on request)
if [[ "${KNAWD_IMAGE_VERIFY:-0}" == 1 ]]; then
  digests() { grep -o '"digest": "sha256:[0-9a-f]*"' "$1/image.json"; }
  for arch in $IMAGE_ARCHES; do
    arch_facts "$arch"
    apt_use
    step_debs >/dev/null
    step_cruns >/dev/null
    step_wasmtime >/dev/null
    step_agent >/dev/null
    again="$(mktemp -d "${TMPDIR:-/tmp}/knawd-image-again.XXXXXX")"
    say "assembling the $ARCH images again into $again to compare digests ..."
    build_images "$again" >"$CACHE/logs/images-verify$SUFFIX.log" 2>&1 || die "the second assembly ($ARCH) failed (log: $CACHE/logs/images-verify$SUFFIX.log)"
    if [[ "$(digests "${IMAGES_OF[$ARCH]}")" != "$(digests "$again")" ]]; then
      die "not reproducible ($ARCH): $(digests "${IMAGES_OF[$ARCH]}" | tr '\n' ' ') then $(digests "$again" | tr '\n' ' ')"
    fi
    rm -rf "$again"
  done
  say "reproducible: the second assembly gave the same digests"
fi

# ---------------------------------------------------------------- 7b. the refusing images of the unbuilt architectures
# A node of an architecture without a crun build (UNBUILT_ARCHES: lib/catalog/architectures.ts) gets this image
# from every installer index: Debian's Node.js of that architecture (UNBUILT_DEBS of UNBUILT_SUITE and what they
# need, resolved by apt against an empty dpkg status), the installer bundle, the agent (the same C source, static,
# with bookworm's cross gcc) and a /vendor whose artifacts.json has no builds. The installer starts there, refuses with
# one line and labels its node failed (lib/installer/node-support.ts); remove runs as anywhere. One image per
# architecture, the same in each engine's index, reproducible; build/image/<arch>/knawd-deployer-unbuilt.oci.tar,
# build/image/unbuilt.json ({ "<arch>": ImageArchive }) and UNBUILT_IMAGES (its cache entry) say what was built.
# Every variable the shared helpers set (ARCH, APT_OPTS, ...) is local here: the other steps' state is untouched.
step_unbuilt_images() {
  local ARCH SUFFIX CROSS GNU LOADER RUST_TARGET QEMU_NAME QEMU_DIR APT_DIR APT_OPTS SYSROOT DEBS DEB_LIST RESOLVED AGENT ENTRY
  local arch records=() t0=$SECONDS
  arch_facts amd64
  apt_use
  cached qemu-user-unbuilt "$SHIP_SUITE-$(apt_cache_ship show --no-all-versions qemu-user 2>/dev/null | awk '/^SHA256: /{print $2}' | cut -c1-16)-$(hash_of <<<"$UNBUILT_ARCHES")" build_unbuilt_qemu
  QEMU_DIR="$ENTRY/bin"
  local SHIP_SUITE="$UNBUILT_SUITE"
  for arch in $UNBUILT_ARCHES; do
    unbuilt_facts "$arch"
    apt_install_missing "gcc-$GNU" "libc6-dev-$ARCH-cross"
    apt_use
    RESOLVED="$APT_DIR/resolved-unbuilt-$(hash_of <<<"$UNBUILT_DEBS")"
    if [[ -f "$RESOLVED" && "$RESOLVED" -nt "$APT_DIR/lists/.updated" ]]; then
      DEB_LIST="$(cat "$RESOLVED")"
    else
      local names
      names="$(apt_ship install -s -q --no-install-recommends $UNBUILT_DEBS 2>/dev/null | awk '/^Inst /{print $2}')"
      [[ -n "$names" ]] || die "$UNBUILT_DEBS cannot be resolved in Debian $SHIP_SUITE's index ($ARCH)"
      DEB_LIST="$(apt_cache_ship show --no-all-versions $names 2>/dev/null | awk '/^Package: /{p=$2} /^Version: /{v=$2} /^SHA256: /{print p, v, $2}' | sort -u)"
      printf '%s\n' "$DEB_LIST" >"$RESOLVED"
    fi
    cached "debs-unbuilt-$SHIP_SUITE$SUFFIX" "$(hash_of <<<"$DEB_LIST")" build_debs
    DEBS="$ENTRY" SYSROOT="$ENTRY/root"
    step_agent
    cached "image-unbuilt$SUFFIX" "$( { echo "$arch $DEBS $AGENT"; sha256sum "$BUNDLE" "$HERE/oci-layer.sh" "$HERE/layered-image.ts" | cut -d' ' -f1; declare -f step_unbuilt_images build_unbuilt_image unbuilt_facts; echo "$IMAGE_NAME $HOST_PREFIX $HOST_PREFIX_PADDED_LENGTH $SOURCE_DATE_EPOCH"; } | hash_of)" build_unbuilt_image
    records+=("$arch=$ENTRY")
    if [[ "${KNAWD_IMAGE_VERIFY:-0}" == 1 ]]; then
      local again
      again="$(mktemp -d "${TMPDIR:-/tmp}/knawd-unbuilt-again.XXXXXX")"
      build_unbuilt_image "$again" >"$CACHE/logs/image-unbuilt-verify$SUFFIX.log" 2>&1 || die "the second $arch unbuilt image failed (log: $CACHE/logs/image-unbuilt-verify$SUFFIX.log)"
      [[ "$(cat "$ENTRY/digest")" == "$(cat "$again/digest")" ]] || die "unbuilt image not reproducible ($arch): $(cat "$ENTRY/digest") then $(cat "$again/digest")"
      rm -rf "$again"
      say "reproducible: the $arch unbuilt image made again has the same digest"
    fi
  done
  # Keyed by what the images are: a rebuilt image with another digest is recorded anew.
  cached images-unbuilt "$( { printf '%s\n' "${records[@]}"; for arch in "${records[@]}"; do cat "${arch#*=}/digest"; done; } | hash_of)" build_unbuilt_record
  UNBUILT_IMAGES="$ENTRY"
  # Published only when it changed, each file renamed into place (tests in other processes may read them).
  for arch in $UNBUILT_ARCHES; do
    local src="${records[*]}"
    src="${src#*"$arch="}" src="${src%% *}"
    mkdir -p "$OUT/$arch"
    if ! cmp -s "$src/knawd-deployer-unbuilt.oci.tar" "$OUT/$arch/knawd-deployer-unbuilt.oci.tar"; then
      cp "$src/knawd-deployer-unbuilt.oci.tar" "$OUT/$arch/.knawd-deployer-unbuilt.oci.tar.$$"
      mv "$OUT/$arch/.knawd-deployer-unbuilt.oci.tar.$$" "$OUT/$arch/knawd-deployer-unbuilt.oci.tar"
    fi
    unbuilt_facts "$arch"
    ln -sfn "$QEMU_DIR/$QEMU_NAME" "$OUT/$arch/qemu"
  done
  if ! cmp -s "$UNBUILT_IMAGES/unbuilt.json" "$OUT/unbuilt.json"; then
    cp "$UNBUILT_IMAGES/unbuilt.json" "$OUT/.unbuilt.json.$$" && mv "$OUT/.unbuilt.json.$$" "$OUT/unbuilt.json"
  fi
  say "unbuilt images ($UNBUILT_ARCHES): $((SECONDS - t0))s"
}
# unbuilt_facts OCI_ARCH: the Debian and GNU names of an unbuilt architecture, and its qemu-user.
unbuilt_facts() {
  case "$1" in
    s390x) ARCH=s390x GNU=s390x-linux-gnu QEMU_NAME=qemu-s390x ;;
    ppc64le) ARCH=ppc64el GNU=powerpc64le-linux-gnu QEMU_NAME=qemu-ppc64le ;;
    *) die "UNBUILT_ARCHES: $1 is not known here (s390x, ppc64le)" ;;
  esac
  SUFFIX="-$ARCH" CROSS=1
}
# trixie's qemu-user (static) for the unbuilt architectures: the agent's build check, and test/image/unbuilt.test.ts.
build_unbuilt_qemu() {
  local out="$1" line emulators=()
  line="$(apt_cache_ship show --no-all-versions qemu-user 2>/dev/null | awk '/^Version: /{v=$2} /^SHA256: /{print v, $2}')"
  [[ -n "$line" ]] || { echo "qemu-user is not in Debian $SHIP_SUITE's index"; return 1; }
  (cd "$out" && apt_ship download -q "qemu-user=${line%% *}")
  sha256sum -c <<<"${line##* }  $(ls "$out"/qemu-user_*.deb)" || { echo "qemu-user: sha256 differs from Debian's index"; return 1; }
  for arch in $UNBUILT_ARCHES; do unbuilt_facts "$arch" && emulators+=("./usr/bin/$QEMU_NAME"); done
  dpkg-deb --fsys-tarfile "$out"/qemu-user_*.deb | tar -x -C "$out" "${emulators[@]}"
  mv "$out/usr/bin" "$out/bin" && rm -rf "$out/usr" "$out"/qemu-user_*.deb
  echo "qemu-user ${line%% *}" >"$out/VERSION"
}
# build_unbuilt_image OUT: OUT/knawd-deployer-unbuilt.oci.tar (linux/<arch>) and OUT/digest, from DEBS, AGENT, BUNDLE.
build_unbuilt_image() {
  local out="$1" ctx="$1/context" rootfs="$1/context/rootfs" d
  mkdir -p "$rootfs"
  for d in "$DEBS"/debs/*.deb; do dpkg-deb -x "$d" "$rootfs"; done
  # What no process reads: documentation, manuals, translations.
  rm -rf "$rootfs"/usr/share/{doc,man,info,lintian,locale,bug}
  # Merged /usr, as trixie's base-files makes it: the loader is reached by the path PT_INTERP names.
  for d in bin sbin lib lib64; do
    if [[ -d "$rootfs/usr/$d" && ! -e "$rootfs/$d" ]]; then ln -s "usr/$d" "$rootfs/$d"; fi
  done
  # Links relative, so that they resolve under qemu-user's QEMU_LD_PREFIX too (bookworm's /lib64/ld64.so.2 is absolute).
  local link
  while IFS= read -r -d '' link; do
    ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$rootfs$(readlink "$link")")" "$link"
  done < <(find "$rootfs" -type l -lname '/*' -print0)
  [[ -x "$rootfs/usr/bin/node" ]] || { echo "nodejs has no /usr/bin/node"; return 1; }
  mkdir -p "$rootfs/tmp" "$rootfs/usr/local/lib" "$rootfs/usr/local/bin" "$rootfs/vendor"
  chmod 1777 "$rootfs/tmp"
  install -m 0644 "$BUNDLE" "$rootfs/usr/local/lib/knawd-installer.js"
  install -m 0755 "$AGENT" "$rootfs/usr/local/bin/knawd-agent"
  # No builds: what the installer reads as "nothing for this node" (lib/catalog/vendor-manifest.ts).
  node -e '
    const [placeholder, packages] = process.argv.slice(1);
    const list = packages.trim().split("\n").map((l) => l.split(" ").slice(0, 2).join("="));
    process.stdout.write(JSON.stringify({ schema: 1, placeholder, builds: {}, targets: {}, packages: list }, null, 2) + "\n");
  ' "$PADDED" "$(cat "$DEBS/PACKAGES")" >"$rootfs/vendor/artifacts.json"
  (cd "$rootfs/vendor" && sha256sum artifacts.json >SHA256SUMS)
  # The node of that architecture runs the bundle with this Node.js: checked at build time under qemu-user.
  QEMU_LD_PREFIX="$rootfs" "$QEMU_DIR/$QEMU_NAME" "$rootfs/usr/bin/node" -e 'console.log(process.arch, process.version)' | tee "$out/NODE"
  find "$ctx" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  local platform="linux/$(cut -d' ' -f1 "$out/NODE" | sed 's/^ppc64$/ppc64le/')"
  bash "$HERE/oci-layer.sh" "$rootfs" "$out/rootfs.tar.gz"
  (cd "$REPO" && node_modules/.bin/ts-node --transpile-only runtime-artifacts/layered-image.ts "${platform#linux/}" "$IMAGE_NAME" "$out/knawd-deployer-unbuilt.oci.tar" "$out/rootfs.tar.gz")
  rm -rf "$ctx" "$out/rootfs.tar.gz"
  tar -xOf "$out/knawd-deployer-unbuilt.oci.tar" index.json | node -e 'const i = JSON.parse(require("fs").readFileSync(0, "utf8")); process.stdout.write(i.manifests[0].digest)' >"$out/digest"
}
# build_unbuilt_record OUT: OUT/unbuilt.json, each image as image.json records one (archive relative to build/image).
build_unbuilt_record() {
  local pair pairs=()
  for pair in "${records[@]}"; do pairs+=("${pair%%=*}=${pair#*=}/knawd-deployer-unbuilt.oci.tar"); done
  node -e '
    const { execFileSync } = require("child_process");
    const [out, ...pairs] = process.argv.slice(1);
    const member = (archive, name) => execFileSync("tar", ["-xOf", archive, name], { maxBuffer: 1 << 30 });
    const record = {};
    for (const pair of pairs) {
      const [arch, archive] = pair.split("=");
      const [desc] = JSON.parse(member(archive, "index.json")).manifests;
      const blob = (d) => member(archive, `blobs/sha256/${d.replace(/^sha256:/, "")}`);
      const manifest = JSON.parse(blob(desc.digest));
      const config = JSON.parse(blob(manifest.config.digest));
      if (config.architecture !== arch || config.os !== "linux") throw new Error(`${archive}: config says ${config.os}/${config.architecture}, not linux/${arch}`);
      const unpacked = (l) => Number(execFileSync("sh", ["-c", "tar -xOf \"$0\" \"$1\" | gzip -dc | wc -c", archive, `blobs/sha256/${l.digest.replace(/^sha256:/, "")}`]).toString().trim());
      record[arch] = {
        name: desc.annotations?.["org.opencontainers.image.ref.name"] ?? "",
        archive: `${arch}/knawd-deployer-unbuilt.oci.tar`,
        digest: desc.digest,
        config: manifest.config.digest,
        layers: manifest.layers.length,
        compressedBytes: manifest.config.size + manifest.layers.reduce((n, l) => n + l.size, 0) + desc.size,
        uncompressedBytes: manifest.layers.reduce((n, l) => n + unpacked(l), 0),
      };
    }
    require("fs").writeFileSync(`${out}/unbuilt.json`, JSON.stringify(record, null, 2) + "\n");
  ' "$1" "${pairs[@]}"
}

# ---------------------------------------------------------------- 8. one OCI image index per image, over the architectures
# What a registry serves (a node pulls its own architecture's manifest): the architectures' blobs unchanged, and
# image.json with the amd64 record as before, every architecture's and the indexes' digests.
# The unbuilt architectures' images (item 4 of issue 29) come first: every installer index lists them.
step_unbuilt_images
UNBUILT=-
[[ ! -f "$OUT/unbuilt.json" ]] || UNBUILT="$OUT/unbuilt.json"
build_index() {
  local pairs=() arch
  for arch in $IMAGE_ARCHES; do pairs+=("$arch=${IMAGES_OF[$arch]}"); done
  (cd "$REPO" && node_modules/.bin/ts-node --transpile-only runtime-artifacts/oci-index.ts "$1" "$UNBUILT" "${pairs[@]}")
}
index_key() {
  for arch in $IMAGE_ARCHES; do echo "$arch ${IMAGES_OF[$arch]}"; done
  sha256sum "$HERE/oci-index.ts" | cut -d' ' -f1
  if [[ "$UNBUILT" != - ]]; then
    sha256sum "$UNBUILT" | cut -d' ' -f1
    node -e 'for (const i of Object.values(require(process.argv[1]))) console.log(i.digest)' "$UNBUILT"
  fi
}
cached index "$(index_key | hash_of)" build_index
INDEX="$ENTRY"
if [[ "${KNAWD_IMAGE_VERIFY:-0}" == 1 ]]; then
  again="$(mktemp -d "${TMPDIR:-/tmp}/knawd-index-again.XXXXXX")"
  build_index "$again" >"$CACHE/logs/index-verify.log" 2>&1 || die "the second index failed (log: $CACHE/logs/index-verify.log)"
  index_digests() { node -e 'const r = require(process.argv[1]).index; console.log([...Object.values(r.installerImages), r.wasiTestImage, r.wasmServiceImage].map((i) => i.digest).join(" "))' "$1/image.json"; }
  [[ "$(index_digests "$INDEX")" == "$(index_digests "$again")" ]] || die "index not reproducible: $(index_digests "$INDEX") then $(index_digests "$again")"
  rm -rf "$again"
  say "reproducible: the indexes made again have the same digests"
fi

# ---------------------------------------------------------------- 9. publish under build/image (amd64), build/image/<arch>, build/image/index
# Atomically, and only when it changed: tests in other processes may be reading the archives.
publish() { # SRC DEST
  cp -a "$1" "$2.tmp.$$"
  rm -rf "$2.old.$$"
  if [[ -e "$2" ]]; then mv "$2" "$2.old.$$"; fi
  mv "$2.tmp.$$" "$2"
  rm -rf "$2.old.$$"
}
for arch in $IMAGE_ARCHES; do
  IMAGES="${IMAGES_OF[$arch]}" dest="$OUT"
  [[ "$arch" == amd64 ]] || dest="$OUT/$arch"
  mkdir -p "$dest"
  # What runs this architecture's binaries here (test/image): trixie's qemu-user.
  if [[ "$arch" != amd64 ]]; then arch_facts "$arch"; ln -sfn "$QEMU_DIR/$QEMU_NAME" "$dest/qemu"; fi
  # amd64's record is part of build/image/image.json (step 8); another architecture's is <arch>/image.json.
  record="$dest/image.json"
  [[ "$arch" != amd64 ]] || record="$dest/.image-amd64.json"
  if ! cmp -s "$IMAGES/image.json" "$record"; then
    # What the single all-engines image left (it is no longer built).
    rm -rf "$dest/knawd-deployer.oci.tar" "$dest/vendor"
    for archive in "$IMAGES"/*.oci.tar; do publish "$archive" "$dest/$(basename "$archive")"; done
    publish "$IMAGES/image.json" "$record"
  fi
done
if ! cmp -s "$INDEX/image.json" "$OUT/image.json" || [[ ! -d "$OUT/index" ]]; then
  mkdir -p "$OUT/index"
  rm -f "$OUT/index/knawd-deployer.oci.tar"
  for archive in "$INDEX"/*.oci.tar; do publish "$archive" "$OUT/index/$(basename "$archive")"; done
  publish "$INDEX/image.json" "$OUT/image.json"
fi
# The catalog pins the test and service images by their index digest, which a node of every built architecture resolves.
node -e '
const fs = require("fs");
const [record, catalog] = process.argv.slice(1);
const index = JSON.parse(fs.readFileSync(record, "utf8")).index;
for (const [file, key, what] of [["wasi-test-image.json", "wasiTestImage", "WASI test image"], ["wasm-service-image.json", "wasmServiceImage", "WASM HTTP service image"]]) {
  const $comment = `Written by npm run image (runtime-artifacts/build-image.sh): the ${what} it builds, by its image index digest (every architecture).`;
  const text = JSON.stringify({ $comment, name: index[key].name, digest: index[key].digest }, null, 2) + "\n";
  const file_ = `${catalog}/${file}`;
  if (fs.existsSync(file_) && fs.readFileSync(file_, "utf8") === text) continue;
  fs.writeFileSync(file_, text);
  console.log(`lib/catalog/${file} updated: commit it`);
}' "$OUT/image.json" "$REPO/lib/catalog" | while read -r line; do say "$line"; done
node -e 'for (const [b, i] of Object.entries(require(process.argv[1]).index.installerImages)) console.log(`image: ${i.name} ${i.digest} (index)`)' "$OUT/image.json"
say "done in $((SECONDS - START))s"
