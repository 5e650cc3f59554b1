#!/usr/bin/env bash
# Proves that each crun build of the image runs a WASI module from its hermetic layout on this host:
#   for the image's build when it is crun-wasmtime or crun-wasmedge (as artifacts.json lists it):
#     lay the build's files out under a fresh prefix P (crun at P/libexec/<runtime>/crun, the rest at P/lib/),
#     rewriting the padded default prefix in them to P padded the same way (what the installer does);
#     `crun --version` lists the handler; an OCI bundle whose entrypoint is hello.wasm (annotation
#     module.wasm.image/variant=compat-smart) prints "hello from wasm via crun"; a plain busybox container
#     through the same crun prints its line too.
#
# Usage: smoke-test.sh VENDOR_DIR    (an installer image's extracted /vendor: builtImage().installers[<ociType>].vendor)
# Needs root (namespaces, mounts, cgroups), python3, wat2wasm, busybox-static.
#
# cgroups: crun refuses a *hybrid* host where any controller is still attached to the cgroup2 hierarchy
# ("cgroups in hybrid mode not supported, drop all controllers from cgroupv2"). On such a host this script moves
# each of those controllers to its own cgroup v1 hierarchy, e.g.
#   mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb hugetlb /sys/fs/cgroup/hugetlb
# KNAWD_SMOKE_FIX_CGROUPS=0 fails instead of touching the mounts.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
X
expected="hello from wasm via crun"
passed=0 failed=0

log() { printf '[smoke-test] %s\n' "$*" >&2; }
fatal() { log "FAIL: $*"; echo "smoke-test: $passed passed, $((failed + 1)) failed"; exit 1; }

[ "$(id -u)" -eq 0 ] || fatal "must run as root"
[ -f "$vendor/artifacts.json" ] || fatal "$vendor/artifacts.json is missing: run npm run image first"
(cd "$vendor" && sha256sum --quiet -c SHA256SUMS) || fatal "$vendor/SHA256SUMS does not check"

fix_cgroups() {
  local fstype v2 controllers c
  fstype="$(stat -fc %T /sys/fs/cgroup)"
  [ "$fstype" = cgroup2fs ] && return 0
  v2="$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)"
  [ -n "$v2" ] || return 0
  controllers="$(cat "$v2/cgroup.controllers" 2>/dev/null || true)"
  [ -z "$controllers" ] && return 0
  [ "${KNAWD_SMOKE_FIX_CGROUPS:-1}" = 1 ] || fatal "crun refuses this layout; move [$controllers] to v1 hierarchies"
  for c in $controllers; do
    log "moving cgroup controller $c from cgroup2 to a v1 hierarchy at /sys/fs/cgroup/$c"
    mkdir -p "/sys/fs/cgroup/$c"
    mount -t cgroup -o "$c" "$c" "/sys/fs/cgroup/$c" || fatal "could not move controller $c"
  done
}
fix_cgroups

tmp="$(mktemp -d /tmp/knawd-smoke.XXXXXX)"
cleanup() { rm -rf "$tmp"; }
trap cleanup EXIT
wat2wasm "$here/local/hello.wat" -o "$tmp/hello.wasm"

# install BUILD PREFIX: the build's files under PREFIX, placeholder rewritten.
install_build() {
  python3 - "$vendor" "$1" "$2" <<'PY'
import json, os, sys
vendor, build, prefix = sys.argv[1:]
m = json.load(open(os.path.join(vendor, "artifacts.json")))
placeholder = m["placeholder"].encode()
to = prefix.encode().ljust(len(placeholder), b"/")
for f in m["builds"][build]["files"]:
    dest = f"{prefix}/libexec/{build}/crun" if f["role"] == "crun" else f"{prefix}/lib/{os.path.basename(f['path'])}"
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    data = open(os.path.join(vendor, f["path"]), "rb").read().replace(placeholder, to)
    with open(dest, "wb") as out:
        out.write(data)
    os.chmod(dest, 0o755 if f["role"] in ("crun", "loader") else 0o644)
PY
}

# run CRUN ID ARGS...: runs a bundle whose entrypoint is ARGS, prints stdout.
run_bundle() {
  local crun="$1" id="$2"; shift 2
  local bundle="$tmp/$id" state="$tmp/state-$id"
  mkdir -p "$bundle/rootfs/bin" "$state"
  cp "$tmp/hello.wasm" "$bundle/rootfs/hello.wasm"
  cp /bin/busybox "$bundle/rootfs/bin/busybox"
  (cd "$bundle" && "$crun" spec)
  python3 - "$bundle/config.json" "$@" <<'PY'
import json, sys
path, args = sys.argv[1], sys.argv[2:]
cfg = json.load(open(path))
cfg["process"]["args"] = args
cfg["process"]["terminal"] = False
cfg.setdefault("annotations", {})["module.wasm.image/variant"] = "compat-smart"
json.dump(cfg, open(path, "w"), indent=2)
PY
  "$crun" --root "$state" run --bundle "$bundle" "$id" </dev/null 2>"$tmp/$id.stderr"
}

check() { # check NAME EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then log "PASS: $1"; passed=$((passed + 1)); else log "FAIL: $1: expected '$2', got '$3'"; failed=$((failed + 1)); fi
}

builds="$(python3 -c 'import json, sys; print(" ".join(b for b in json.load(open(sys.argv[1]))["builds"] if b in ("crun-wasmtime", "crun-wasmedge")))' "$vendor/artifacts.json")"
[ -n "$builds" ] || fatal "$vendor/artifacts.json has neither crun-wasmtime nor crun-wasmedge"
for build in $builds; do
  engine="${build#crun-}"
  # A prefix that is not the default and not as long: the rewrite must really take effect.
  prefix="$tmp/p-$engine"
  install_build "$build" "$prefix"
  crun="$prefix/libexec/$build/crun"
  interp="$(readelf -l "$crun" | sed -n 's/.*Requesting program interpreter: \(.*\)\]/\1/p')"
  check "$build: PT_INTERP is under $prefix" "$prefix" "$(dirname "$(dirname "$interp" | tr -s /)")"
  version="$("$crun" --version 2>&1 || true)"
  printf '%s\n' "$version" | sed 's/^/    /' >&2
  check "$build --version lists +WASM:$engine" yes "$(grep -q "+WASM:$engine" <<<"$version" && echo yes || echo no)"
  out="$(run_bundle "$crun" "wasm-$engine-$$" /hello.wasm || cat "$tmp/wasm-$engine-$$.stderr" >&2)"
  check "$build runs hello.wasm" "$expected" "$out"
  out="$(run_bundle "$crun" "plain-$engine-$$" /bin/busybox echo plain linux ok || cat "$tmp/plain-$engine-$$.stderr" >&2)"
  check "$build runs a plain busybox container" "plain linux ok" "$out"
done
echo "smoke-test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
