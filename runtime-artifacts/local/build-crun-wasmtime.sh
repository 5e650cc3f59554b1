#!/usr/bin/env bash
# Build crun (Debian's source package) with the wasmtime handler, plus the
# wasmtime C API as libwasmtime.so (from the crates.io crate
# wasmtime-c-api-impl), for the local end-to-end test.
#
# Output (outside the checkout, keyed by both versions):
#   ${KNAWD_TOOLS_CACHE:-$HOME/.cache/knawd-deployer}/crun-wasmtime-<crun>-wasmtime-<wasmtime>/
#     bin/crun-wasmtime   crun, RUNPATH = <that dir>/lib:/opt/knawd/lib
#     lib/libwasmtime.so  what crun dlopen("libwasmtime.so")s
#     include/            the matching wasmtime C headers
#     BUILDINFO           versions and flags used
# and symlinks <repo>/.tools/bin/crun-wasmtime, <repo>/.tools/lib/libwasmtime.so.
#
# Idempotent: a warm run only re-creates the symlinks and prints "cached".
# Cold run: ~10 min on 2 cores (almost all of it cargo building wasmtime).
# Needs root (or sudo) only when Debian packages or the deb-src entry are
# missing. Needs rustup's cargo >= 1.78 (Debian bookworm's cargo is too old).
#
# Environment:
#   KNAWD_TOOLS_CACHE   cache root (default ~/.cache/knawd-deployer)
#   KNAWD_FORCE_REBUILD=1  ignore a complete cache entry and rebuild it
set -euo pipefail

# crun: the upstream version of Debian bookworm's source package
# (1.8.1-1+deb12u1 at the time of writing; any Debian revision of 1.8.1 is accepted).
CRUN_VERSION=1.8.1
# wasmtime: crun 1.8.1's handler (src/libcrun/handlers/wasmtime.c) dlsym()s
# wasi_config_preopen_dir and calls it with 3 arguments. 26.0.1 is the newest
# wasmtime whose C API still has that signature (27.0.0 added dir_perms and
# file_perms; 48 has a bool fs_mutable), and it has every other symbol crun
# looks up (incl. wasmtime_wat2wasm, wasmtime_linker_define_wasi,
# wasmtime_context_set_wasi). Keep in sync with wasmtime-capi/Cargo.toml.
WASMTIME_VERSION=26.0.1
MIN_RUST=1.78.0

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
cache_root="${KNAWD_TOOLS_CACHE:-$HOME/.cache/knawd-deployer}"
key="crun-wasmtime-${CRUN_VERSION}-wasmtime-${WASMTIME_VERSION}"
out="$cache_root/$key"
work="$cache_root/work"

log() { printf '[build-crun-wasmtime] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root for: $*"; fi
}

link_tools() {
  mkdir -p "$repo_root/.tools/bin" "$repo_root/.tools/lib"
  ln -sfn "$out/bin/crun-wasmtime" "$repo_root/.tools/bin/crun-wasmtime"
  ln -sfn "$out/lib/libwasmtime.so" "$repo_root/.tools/lib/libwasmtime.so"
}

is_complete() {
  [ -f "$out/.complete" ] && [ -x "$out/bin/crun-wasmtime" ] && [ -f "$out/lib/libwasmtime.so" ]
}

if [ "${KNAWD_FORCE_REBUILD:-0}" != 1 ] && is_complete; then
  link_tools
  echo "cached: $out"
  exit 0
fi

mkdir -p "$cache_root" "$work"
# One builder per cache entry at a time.
exec 9>"$cache_root/.$key.lock"
flock 9
if [ "${KNAWD_FORCE_REBUILD:-0}" != 1 ] && is_complete; then
  link_tools
  echo "cached: $out"
  exit 0
fi

start=$(date +%s)

# ---------------------------------------------------------------- packages
# Build dependencies of crun 1.8.1 that the `crun` binary actually needs
# (no man pages, no python bindings), cmake for wasmtime-c-api-impl's
# build.rs (it generates wasmtime/conf.h), dpkg-dev for `apt-get source`.
pkgs=(gcc make autoconf automake libtool pkg-config gperf python3
      libsystemd-dev libseccomp-dev libcap-dev libyajl-dev
      dpkg-dev cmake)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

apt_updated=0
apt_update() { [ "$apt_updated" = 1 ] || { as_root apt-get update -qq; apt_updated=1; }; }

# deb-src entry (only if no deb-src entry exists at all).
has_deb_src() {
  grep -Eqs '^[[:space:]]*deb-src[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null && return 0
  grep -Eqs '^[[:space:]]*Types:.*deb-src' /etc/apt/sources.list.d/*.sources 2>/dev/null && return 0
  return 1
}
if ! has_deb_src; then
  . /etc/os-release
  codename="${VERSION_CODENAME:?cannot tell the Debian release}"
  log "adding deb-src entries for $codename (/etc/apt/sources.list.d/knawd-deb-src.sources)"
  as_root tee /etc/apt/sources.list.d/knawd-deb-src.sources >/dev/null <<EOF
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $codename $codename-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: $codename-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  apt_update
fi

if [ "${#missing[@]}" -gt 0 ]; then
  log "installing: ${missing[*]}"
  apt_update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---------------------------------------------------------------- rust
command -v cargo >/dev/null 2>&1 || die "cargo not found (install Rust >= $MIN_RUST with rustup)"
rust_ver="$(rustc --version | awk '{print $2}')"
if [ "$(printf '%s\n%s\n' "$MIN_RUST" "$rust_ver" | sort -V | head -n1)" != "$MIN_RUST" ]; then
  die "rustc $rust_ver is older than $MIN_RUST (wasmtime $WASMTIME_VERSION's MSRV)"
fi

# ---------------------------------------------------------------- wasmtime C API
# The cargo target dir is kept per wasmtime version so that a crun-only
# rebuild does not recompile wasmtime.
log "building libwasmtime.so (wasmtime-c-api-impl $WASMTIME_VERSION, cargo release)"
t0=$(date +%s)
export CARGO_TARGET_DIR="$work/wasmtime-capi-$WASMTIME_VERSION/target"
cargo build --release --locked --manifest-path "$here/wasmtime-capi/Cargo.toml" >&2
wt_lib="$CARGO_TARGET_DIR/release/libwasmtime.so"
[ -f "$wt_lib" ] || die "cargo did not produce $wt_lib"
# wasmtime-c-api-impl's build.rs installs the headers (with a generated
# wasmtime/conf.h) into its OUT_DIR; take the newest such directory.
wt_inc="$(ls -1dt "$CARGO_TARGET_DIR"/release/build/wasmtime-c-api-impl-*/out/include 2>/dev/null | head -n1)"
[ -n "$wt_inc" ] && [ -f "$wt_inc/wasmtime.h" ] || die "wasmtime headers not found under $CARGO_TARGET_DIR"
log "libwasmtime.so built in $(( $(date +%s) - t0 ))s"

stage="$work/stage-$key"
rm -rf "$stage"
mkdir -p "$stage/bin" "$stage/lib" "$stage/include"
cp "$wt_lib" "$stage/lib/libwasmtime.so"
cp -r "$wt_inc/." "$stage/include/"
# build.rs knows no WAT feature flag although the crate's `wat` feature is on
# (wasmtime_wat2wasm is exported); declare it so the header matches the lib.
sed -i 's|^/\* #undef WASMTIME_FEATURE_WAT \*/|#define WASMTIME_FEATURE_WAT|' "$stage/include/wasmtime/conf.h"

# ---------------------------------------------------------------- crun
log "fetching Debian source package crun"
src_dir="$work/crun-src"
rm -rf "$src_dir"
mkdir -p "$src_dir"
# By version: with trixie's source lists beside bookworm's (tools/debian-trixie.sh) a bare `apt-get source crun`
# takes the newest crun of any suite, whatever the pins say.
crun_src="$(apt-cache showsrc crun | sed -n "s/^Version: \(${CRUN_VERSION//./\\.}-.*\)/\1/p" | sort -V | tail -n1)"
[ -n "$crun_src" ] || die "no Debian source package of crun $CRUN_VERSION in the apt lists (apt-cache showsrc crun)"
(cd "$src_dir" && apt-get source -qq "crun=$crun_src" >/dev/null 2>"$src_dir/apt-source.log") \
  || { cat "$src_dir/apt-source.log" >&2; die "apt-get source crun=$crun_src failed"; }
crun_dir="$src_dir/crun-$CRUN_VERSION"
[ -d "$crun_dir" ] || die "apt-get source did not give crun $CRUN_VERSION (got: $(ls "$src_dir"))"
deb_ver="$(sed -n 's/^Version: //p' "$src_dir"/crun_*.dsc | head -n1)"
log "crun $deb_ver: configure --with-wasmtime"

# RUNPATH: crun re-executes itself from a sealed memfd copy at start-up
# (CVE-2019-5736 mitigation, ensure_cloned_binary), so $ORIGIN resolves to "/"
# by the time the handler dlopen()s libwasmtime.so. Use absolute paths: this
# cache entry's lib/ first, then the installer's prefix /opt/knawd/lib.
rpath="$out/lib:/opt/knawd/lib"
t0=$(date +%s)
(
  cd "$crun_dir"
  ./configure -q --with-wasmtime --disable-dependency-tracking \
    CPPFLAGS="-I$stage/include" CFLAGS="-O2 -g0" >&2
  make -s git-version.h >&2
  make -s -j"$(nproc)" crun LDFLAGS="-Wl,-rpath,$rpath -Wl,-O1 -s" >&2
)
log "crun built in $(( $(date +%s) - t0 ))s"
cp "$crun_dir/crun" "$stage/bin/crun-wasmtime"
strip "$stage/bin/crun-wasmtime" 2>/dev/null || true

readelf -d "$stage/bin/crun-wasmtime" | grep -q "RUNPATH.*\[$rpath\]" \
  || die "crun RUNPATH is not $rpath: $(readelf -d "$stage/bin/crun-wasmtime" | grep -E 'RPATH|RUNPATH')"
"$stage/bin/crun-wasmtime" --version | grep -q '+WASM:wasmtime' \
  || die "crun was built without the wasmtime handler"

cat >"$stage/BUILDINFO" <<EOF
crun            $deb_ver (Debian source package, configure --with-wasmtime)
wasmtime        $WASMTIME_VERSION (crates.io wasmtime-c-api-impl, features cranelift wasi wat)
rustc           $(rustc --version)
crun RUNPATH    $rpath
built           $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(( $(date +%s) - start ))s
EOF

rm -rf "$out"
mv "$stage" "$out"
touch "$out/.complete"
link_tools
log "done in $(( $(date +%s) - start ))s"
"$out/bin/crun-wasmtime" --version >&2
echo "built: $out"
