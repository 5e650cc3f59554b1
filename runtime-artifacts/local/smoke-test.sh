#!/usr/bin/env bash
# Proves that crun-wasmtime really runs a WASI module:
#   1. `crun-wasmtime --version` lists +WASM:wasmtime
#   2. hello.wat -> hello.wasm (Debian's wabt), an OCI bundle made by hand
#      (config.json from `crun spec`, process.args ["/hello.wasm"], annotation
#      module.wasm.image/variant=compat-smart, no terminal), `crun run` as root,
#      and stdout must be exactly "hello from wasm via crun".
#
# Usage: smoke-test.sh [path/to/crun-wasmtime]
#   default: <repo>/.tools/bin/crun-wasmtime (built by build-crun-wasmtime.sh
#   if it is missing).
#
# Needs root (namespaces, mounts, cgroups).
#
# cgroups: crun 1.8.1 refuses a *hybrid* host where any controller is still
# attached to the cgroup2 hierarchy ("cgroups in hybrid mode not supported,
# drop all controllers from cgroupv2"). On such a host this script moves each
# of those controllers to its own cgroup v1 hierarchy, e.g.
#   mkdir -p /sys/fs/cgroup/hugetlb && mount -t cgroup -o hugetlb hugetlb /sys/fs/cgroup/hugetlb
# Set KNAWD_SMOKE_FIX_CGROUPS=0 to fail instead of touching the mounts.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
expected="hello from wasm via crun"

log() { printf '[smoke-test] %s\n' "$*" >&2; }
fail() { log "FAIL: $*"; echo "smoke-test: 0 passed, 1 failed"; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "must run as root"

crun="${1:-$repo_root/.tools/bin/crun-wasmtime}"
if [ ! -x "$crun" ] && [ -z "${1:-}" ]; then
  log "$crun missing; building it"
  "$here/build-crun-wasmtime.sh" >&2
fi
[ -x "$crun" ] || fail "no crun binary at $crun"

# ------------------------------------------------------------ 1. --version
version_out="$("$crun" --version)"
printf '%s\n' "$version_out"
grep -q '+WASM:wasmtime' <<<"$version_out" || fail "$crun has no +WASM:wasmtime feature"

# ------------------------------------------------------------ cgroups
# cgroup v2 only (/sys/fs/cgroup is cgroup2fs): fine.
# legacy/hybrid (/sys/fs/cgroup is a tmpfs of v1 mounts): crun needs the
# cgroup2 mount (usually /sys/fs/cgroup/unified) to have no controllers.
fix_cgroups() {
  local fstype v2 controllers c
  fstype="$(stat -fc %T /sys/fs/cgroup)"
  [ "$fstype" = cgroup2fs ] && { log "cgroups: unified (v2) only"; return 0; }
  v2="$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)"
  if [ -z "$v2" ]; then log "cgroups: legacy v1 only"; return 0; fi
  controllers="$(cat "$v2/cgroup.controllers" 2>/dev/null || true)"
  if [ -z "$controllers" ]; then
    log "cgroups: hybrid, cgroup2 at $v2 has no controllers"
    return 0
  fi
  log "cgroups: hybrid, cgroup2 at $v2 still holds controllers: $controllers"
  [ "${KNAWD_SMOKE_FIX_CGROUPS:-1}" = 1 ] \
    || fail "crun refuses this layout; move [$controllers] to v1 hierarchies or set KNAWD_SMOKE_FIX_CGROUPS=1"
  for c in $controllers; do
    log "mounting a cgroup v1 hierarchy for $c: mount -t cgroup -o $c $c /sys/fs/cgroup/$c"
    mkdir -p "/sys/fs/cgroup/$c"
    mount -t cgroup -o "$c" "$c" "/sys/fs/cgroup/$c" \
      || fail "could not move controller $c from cgroup2 to v1"
  done
  controllers="$(cat "$v2/cgroup.controllers" 2>/dev/null || true)"
  [ -z "$controllers" ] || fail "cgroup2 still holds controllers: $controllers"
}
fix_cgroups

# ------------------------------------------------------------ 2. bundle
if ! command -v wat2wasm >/dev/null 2>&1; then
  log "installing wabt (wat2wasm)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wabt >/dev/null
fi

tmp="$(mktemp -d /tmp/knawd-smoke.XXXXXX)"
id="knawd-smoke-$$"
state="$tmp/state"
cleanup() {
  "$crun" --root "$state" delete -f "$id" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

bundle="$tmp/bundle"
mkdir -p "$bundle/rootfs" "$state"
wat2wasm "$here/hello.wat" -o "$bundle/rootfs/hello.wasm"
(cd "$bundle" && "$crun" spec)
python3 - "$bundle/config.json" <<'EOF'
import json, sys
path = sys.argv[1]
with open(path) as f:
    cfg = json.load(f)
cfg["process"]["args"] = ["/hello.wasm"]
cfg["process"]["terminal"] = False
cfg.setdefault("annotations", {})["module.wasm.image/variant"] = "compat-smart"
with open(path, "w") as f:
    json.dump(cfg, f, indent=2)
EOF

# ------------------------------------------------------------ 3. run
log "running: $crun --root $state run --bundle $bundle $id"
set +e
out="$("$crun" --root "$state" run --bundle "$bundle" "$id" </dev/null 2>"$tmp/stderr")"
rc=$?
set -e
printf '%s\n' "$out"
[ "$rc" -eq 0 ] || fail "crun run exited $rc: $(cat "$tmp/stderr")"
[ "$out" = "$expected" ] || fail "expected '$expected', got '$out' (stderr: $(cat "$tmp/stderr"))"
log "PASS: the wasm module printed the expected line through crun's wasmtime handler"
echo "smoke-test: 1 passed, 0 failed"
