#!/usr/bin/env bash
# Provisions the tools the tests and charts need (entry point of `npm run tools`).
#
#   bash tools/install-tools.sh            # build/install whatever is missing (= `all`)
#   bash tools/install-tools.sh demo       # only what `npm run demo` needs: helm, containerd 2.x, etcd, the
#                                          # Kubernetes binaries, the node supervisor, the image
#   KNAWD_TOOLS_REBUILD=helm bash tools/install-tools.sh      # force one rebuild
#   KNAWD_TOOLS_REBUILD=all  bash tools/install-tools.sh      # force all rebuilds
#
# Go-built tools are compiled once into a cache outside the checkout,
#   ${KNAWD_TOOLS_CACHE:-$HOME/.cache/knawd-deployer}/<tool>-<version>/
# and symlinked into <repo>/.tools/. Debian packages are apt-installed only when
# missing. A warm run prints one line per tool and takes a few seconds.
# Versions are pinned in tools/versions.env. See tools/README.md.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="$REPO/tools"
BIN="$REPO/.tools/bin"
CTRD2_BIN="$REPO/.tools/containerd2/bin"
REBUILD=" ${KNAWD_TOOLS_REBUILD:-} "

die() { echo "install-tools: error: $*" >&2; exit 1; }
say() { echo "$*"; }

# Which tools: `all` (every suite's), `demo` (the single-node cluster and the image, nothing else) or
# `demo-knative` (that and Knative Serving: `npm run demo -- --knative`).
SET="${1:-all}"
[[ $# -le 1 && ( "$SET" == all || "$SET" == demo || "$SET" == demo-knative ) ]] || die "unknown argument(s) '$*': accepted: all (the default), demo, demo-knative"
all_set() { [[ "$SET" == all ]]; }
knative_set() { [[ "$SET" == all || "$SET" == demo-knative ]]; }

[[ -n "${KNAWD_TOOLS_CACHE:-}" || -n "${HOME:-}" ]] || die "neither KNAWD_TOOLS_CACHE nor HOME is set"
CACHE="${KNAWD_TOOLS_CACHE:-$HOME/.cache/knawd-deployer}"

# shellcheck source=tools/versions.env
. "$TOOLS_DIR/versions.env" || die "cannot read $TOOLS_DIR/versions.env"
for v in HELM_VERSION HELM4_VERSION COSIGN_VERSION CONTAINERD_VERSION CONTAINERD1_VERSION CONTAINERD_V4_VERSION CRICTL_VERSION K8S_VERSION K8S_OLDEST_VERSION ETCD_VERSION ETCD_OLDEST_VERSION KNATIVE_SERVING_OLDEST KNATIVE_SERVING_NEWEST KNATIVE_SERVING_VERSION KUBE_SCORE_VERSION CHECKOV_VERSION; do
  [[ -n "${!v:-}" ]] || die "$v is not set in tools/versions.env"
done

mkdir -p "$CACHE/logs" "$BIN" "$CTRD2_BIN" || die "cannot create $CACHE or $REPO/.tools"

# ---------------------------------------------------------------- helpers

# link TARGET LINKNAME: (re)point a symlink, only touching it when it differs.
link() {
  local target="$1" name="$2"
  [[ -x "$target" ]] || die "$target is missing or not executable"
  if [[ "$(readlink "$name" 2>/dev/null || true)" != "$target" ]]; then
    ln -sfn "$target" "$name"
  fi
}

want_rebuild() { [[ "$REBUILD" == *" all "* || "$REBUILD" == *" $1 "* ]]; }

# What a cold build took on this 2-core machine under load (cache entries' logs and .complete markers), for the
# progress lines. The Kubernetes binaries after kube-apiserver reuse the Go build cache it filled.
declare -A USUALLY=(
  [helm]="1 min" [helm4]="1 min" [containerd]="1 min" [containerd-v4]="1 min" [containerd1]="2 min" [crictl]="30 s" [crio]="7 min"
  [kube-apiserver]="17 min" [kubectl]="1.5 min" [etcd]="1.5 min" [kubelet]="1 min" [kube-controller-manager]="1.5 min" [kube-scheduler]="10 s"
  [kube-proxy]="15 s" [cosign]="7 min" [node-supervisor]="a few seconds" [knative-serving]="30 s" [kube-score]="1 min" [checkov]="1.5 min"
)
usually() { [[ -n "${USUALLY[$1]:-}" ]] && echo ", usually ${USUALLY[$1]} cold" || true; }

# Go's standard install location, in case a non-login shell left it off PATH.
if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
  PATH="/usr/local/go/bin:$PATH"
fi
need_go() {
  command -v go >/dev/null 2>&1 || die "go is not on PATH (Go >= 1.26 is needed to build $1)"
}

# Common environment for every Go build: never fetch another toolchain, build
# static binaries, keep the user's GOPATH/GOCACHE (both outside the checkout).
go_env() {
  env GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOWORK=off "$@"
}

# cached_build NAME VERSION BUILD_FUNCTION VERIFY_FUNCTION
# The cache entry $CACHE/NAME-VERSION is valid once it has a .complete marker.
# Builds go into a temporary sibling directory that is renamed into place when
# the build and its verification succeed, so an interrupted build never leaves
# a half-filled entry. A per-entry flock keeps two runs from building at once.
# Sets CACHED_DIR to the entry.
cached_build() {
  local name="$1" version="$2" build="$3" verify="$4"
  local dir="$CACHE/$name-$version" log="$CACHE/logs/$name-$version.log"
  CACHED_DIR="$dir"
  if [[ -f "$dir/.complete" ]] && ! want_rebuild "$name"; then
    say "$name $version: cached"
    return 0
  fi
  need_go "$name"
  local lockfd
  exec {lockfd}>"$CACHE/.$name-$version.lock"
  if ! flock -n "$lockfd"; then
    say "$name $version: another run is building it, waiting$(usually "$name") (log: $log) ..."
    flock "$lockfd"
  fi
  if [[ -f "$dir/.complete" ]] && ! want_rebuild "$name"; then
    exec {lockfd}>&-
    say "$name $version: cached"
    return 0
  fi
  local tmp="$dir.partial"
  rm -rf "$tmp" && mkdir -p "$tmp"
  say "$name $version: building$(usually "$name") (log: $log) ..."
  local start=$SECONDS
  if ! "$build" "$tmp" "$version" >"$log" 2>&1; then
    tail -n 25 "$log" | sed 's/^/    /' >&2
    rm -rf "$tmp"
    die "$name $version: build failed (full log: $log)"
  fi
  local out
  if ! out="$("$verify" "$tmp" 2>&1)"; then
    printf '%s\n' "$out" | tail -n 10 | sed 's/^/    /' >&2
    rm -rf "$tmp"
    die "$name $version: built binary failed its self-check"
  fi
  touch "$tmp/.complete"
  rm -rf "$dir" && mv "$tmp" "$dir"
  exec {lockfd}>&-
  say "$name $version: built in $((SECONDS - start))s ($(head -n1 <<<"$out"))"
}

# ---------------------------------------------------------------- Debian packages

# Only ask apt when something is actually missing, so warm runs stay offline.
APT_MISSING=()
apt_check() { # apt_check PACKAGE TEST...
  local pkg="$1"; shift
  if ! "$@" >/dev/null 2>&1; then APT_MISSING+=("$pkg"); fi
}
has_cmd() { command -v "$1"; }
has_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

apt_check runc          has_cmd runc
apt_check wabt          has_cmd wat2wasm
# The WASI probe the handler tests run (runtime-artifacts/local/wasi-probe.c): C for wasm32-wasi.
apt_check clang-14      has_cmd clang-14
apt_check lld-14        has_cmd wasm-ld-14
apt_check wasi-libc     has_pkg wasi-libc
apt_check libclang-rt-14-dev-wasm32 has_pkg libclang-rt-14-dev-wasm32
apt_check busybox-static has_pkg busybox-static
apt_check openssl       has_cmd openssl
# HTTP requests to services inside the node's network namespace (npm run demo).
apt_check curl          has_cmd curl
if all_set; then
  apt_check containerd    test -x /usr/bin/containerd
  apt_check yamllint      has_cmd yamllint
  apt_check skopeo        has_cmd skopeo
  # The image tests' old userland (a Debian bullseye chroot).
  apt_check mmdebstrap    has_cmd mmdebstrap
  # A registry on loopback for the image push test (its service is never started: see policy-rc.d below).
  apt_check docker-registry has_cmd docker-registry
fi
# shellcheck source=tools/install-node-tools.sh
. "$TOOLS_DIR/install-node-tools.sh" || die "cannot read $TOOLS_DIR/install-node-tools.sh"
node_tools_apt_checks

if ((${#APT_MISSING[@]})); then
  command -v apt-get >/dev/null 2>&1 || die "missing ${APT_MISSING[*]} and apt-get is not available (Debian/Ubuntu needed)"
  SUDO=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "missing ${APT_MISSING[*]}: run as root or install sudo"
    SUDO=(sudo)
  fi
  say "apt: installing ${APT_MISSING[*]} ..."
  # Installing containerd (or docker-registry) must not start their services: that would
  # occupy ports the tests use. Keep an existing policy-rc.d, else add one
  # temporarily.
  POLICY=/usr/sbin/policy-rc.d
  ADDED_POLICY=0
  if [[ ! -e $POLICY ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
    "${SUDO[@]}" chmod 755 "$POLICY"
    ADDED_POLICY=1
  fi
  apt_log="$CACHE/logs/apt.log"
  apt_ok=1
  {
    "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 update &&
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
      install -y --no-install-recommends "${APT_MISSING[@]}"
  } >"$apt_log" 2>&1 || apt_ok=0
  if ((ADDED_POLICY)); then "${SUDO[@]}" rm -f "$POLICY"; fi
  if ((!apt_ok)); then
    tail -n 15 "$apt_log" | sed 's/^/    /' >&2
    die "apt-get install ${APT_MISSING[*]} failed (full log: $apt_log)"
  fi
fi

pkg_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
report_apt() { # report_apt PACKAGE WHAT PATH
  local src="Debian $(pkg_version "$1")"
  has_pkg "$1" || src="not from apt"
  [[ -e "$3" ]] || die "$2 is still missing after apt-get install $1"
  say "$2 ($src, $3): installed"
}
report_apt runc           runc              "$(command -v runc)"
report_apt wabt           wabt              "$(command -v wat2wasm)"
report_apt clang-14       clang-14          "$(command -v clang-14)"
report_apt lld-14         wasm-ld-14        "$(command -v wasm-ld-14)"
report_apt wasi-libc      wasi-libc         /usr/lib/wasm32-wasi/libc.a
report_apt libclang-rt-14-dev-wasm32 "wasm32 compiler-rt" /usr/lib/llvm-14/lib/clang/14.0.6/lib/wasi/libclang_rt.builtins-wasm32.a
report_apt busybox-static busybox-static    /bin/busybox
report_apt curl           curl              "$(command -v curl)"
if all_set; then
  report_apt containerd     "containerd 1.6"  /usr/bin/containerd
  report_apt yamllint       yamllint          "$(command -v yamllint)"
  report_apt skopeo         skopeo            "$(command -v skopeo)"
  report_apt mmdebstrap     mmdebstrap        "$(command -v mmdebstrap)"
  report_apt docker-registry docker-registry  "$(command -v docker-registry)"
fi

# ---------------------------------------------------------------- helm

build_helm() {
  local out="$1" v="$2" gomod client_go k8s_major k8s_minor
  # helm's Makefile stamps the Kubernetes version of its client-go into the
  # default .Capabilities.KubeVersion (otherwise helm template says v1.20).
  gomod="$(go_env go mod download -json "helm.sh/helm/v3@$v" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  client_go="$(awk '$1=="k8s.io/client-go"{print $2; exit}' "$gomod")" # v0.MM.p
  [[ "$client_go" =~ ^v0\.([0-9]+)\. ]] || { echo "cannot read client-go version from $gomod"; return 1; }
  k8s_major=1 k8s_minor="${BASH_REMATCH[1]}"
  local ld="-s -w -X helm.sh/helm/v3/internal/version.version=$v -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  local p
  for p in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ld+=" -X $p.k8sVersionMajor=$k8s_major -X $p.k8sVersionMinor=$k8s_minor"
  done
  go_env GOBIN="$out" go install -trimpath -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@$v"
}
# helm_reports DIR EXPECTED: the helm in DIR says it is version EXPECTED.
helm_reports() {
  local v; v="$("$1/helm" version --short)" || return 1
  [[ "$v" == "$2"* ]] || { echo "helm reports $v, expected $2"; return 1; }
  echo "helm $v"
}
verify_helm() { helm_reports "$1" "$HELM_VERSION"; }
cached_build helm "$HELM_VERSION" build_helm verify_helm
link "$CACHED_DIR/helm" "$BIN/helm"

# ---------------------------------------------------------------- helm 4 (reproducible `helm package`)

build_helm4() {
  go_env GOBIN="$1" go install -trimpath -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$2" "helm.sh/helm/v4/cmd/helm@$2"
}
verify_helm4() { helm_reports "$1" "$HELM4_VERSION"; }
if all_set; then
  cached_build helm4 "$HELM4_VERSION" build_helm4 verify_helm4
  link "$CACHED_DIR/helm" "$BIN/helm4"
fi

# ---------------------------------------------------------------- cosign (npm run release: signatures, SBOM attachments)

build_cosign() {
  go_env GOBIN="$1" go install -trimpath -ldflags "-s -w -X sigs.k8s.io/release-utils/version.gitVersion=$2" \
    "github.com/sigstore/cosign/v2/cmd/cosign@$2"
}
verify_cosign() {
  local v; v="$("$1/cosign" version --json 2>/dev/null)" || return 1
  [[ "$v" == *"\"gitVersion\": \"$COSIGN_VERSION\""* || "$v" == *"\"gitVersion\":\"$COSIGN_VERSION\""* ]] || { echo "cosign reports $v, expected $COSIGN_VERSION"; return 1; }
  echo "cosign $COSIGN_VERSION"
}
if all_set; then
  cached_build cosign "$COSIGN_VERSION" build_cosign verify_cosign
  link "$CACHED_DIR/cosign" "$BIN/cosign"
fi

# ---------------------------------------------------------------- containerd 2.x

build_containerd() {
  local out="$1" v="$2" m=github.com/containerd/containerd/v2
  go_env GOBIN="$out" go install -trimpath \
    -ldflags "-s -w -X $m/version.Version=$v -X $m/version.Package=$m" \
    "$m/cmd/containerd@$v" "$m/cmd/ctr@$v" "$m/cmd/containerd-shim-runc-v2@$v"
}
verify_containerd() {
  local d="$1" v
  v="$("$d/containerd" --version)" || return 1
  [[ "$v" == *" $CONTAINERD_VERSION"* ]] || { echo "containerd reports '$v', expected $CONTAINERD_VERSION"; return 1; }
  "$d/ctr" --version >/dev/null || return 1
  "$d/containerd-shim-runc-v2" -v >/dev/null || return 1
  "$d/containerd" config default | grep -qx 'version = 3' ||
    { echo "containerd config default has no 'version = 3'"; return 1; }
  echo "$v"
}
cached_build containerd "$CONTAINERD_VERSION" build_containerd verify_containerd
for b in containerd ctr containerd-shim-runc-v2; do
  link "$CACHED_DIR/$b" "$CTRD2_BIN/$b"
done
link "$CACHED_DIR/containerd" "$BIN/containerd"

# ---------------------------------------------------------------- containerd 2.3+ (config version 4)

build_containerd_v4() {
  local m=github.com/containerd/containerd/v2
  go_env GOBIN="$1" go install -trimpath \
    -ldflags "-s -w -X $m/version.Version=$2 -X $m/version.Package=$m" "$m/cmd/containerd@$2"
}
verify_containerd_v4() {
  local v
  v="$("$1/containerd" --version)" || return 1
  [[ "$v" == *" $CONTAINERD_V4_VERSION"* ]] || { echo "containerd reports '$v', expected $CONTAINERD_V4_VERSION"; return 1; }
  "$1/containerd" config default | grep -qx 'version = 4' ||
    { echo "containerd config default has no 'version = 4'"; return 1; }
  echo "$v"
}
if all_set; then
  cached_build containerd-v4 "$CONTAINERD_V4_VERSION" build_containerd_v4 verify_containerd_v4
  mkdir -p "$REPO/.tools/containerd-v4/bin"
  link "$CACHED_DIR/containerd" "$REPO/.tools/containerd-v4/bin/containerd"
fi

# ---------------------------------------------------------------- crictl

build_crictl() {
  go_env GOBIN="$1" go install -trimpath \
    -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$2" \
    "sigs.k8s.io/cri-tools/cmd/crictl@$2"
}
verify_crictl() {
  local v; v="$("$1/crictl" --version)" || return 1
  [[ "$v" == *"$CRICTL_VERSION"* ]] || { echo "crictl reports '$v', expected $CRICTL_VERSION"; return 1; }
  echo "$v"
}
if all_set; then
  cached_build crictl "$CRICTL_VERSION" build_crictl verify_crictl
  link "$CACHED_DIR/crictl" "$BIN/crictl"
fi

# ---------------------------------------------------------------- CRI-O (end-to-end test)

if all_set; then . "$TOOLS_DIR/crio.sh"; fi

# ---------------------------------------------------------------- Kubernetes and etcd (tools/install-kubernetes.sh)

# shellcheck source=tools/install-kubernetes.sh
. "$TOOLS_DIR/install-kubernetes.sh" || die "cannot read $TOOLS_DIR/install-kubernetes.sh"
kubernetes_build

# ---------------------------------------------------------------- single-node cluster (tools/install-node-tools.sh)

node_tools_build
if all_set; then kubernetes_oldest_build; node_tools_release oldest "$K8S_OLDEST_VERSION"; fi

# What only test suites use (Knative, the lint gate), up to the image: not for `demo` (body not indented, so
# that edits of these sections merge).
if all_set; then

# ---------------------------------------------------------------- Knative Serving's configs and parser

# Knative's own files, not copies in this repository: the module proxy serves them checked against go.sum's
# checksum database, and each entry keeps Knative's LICENSE beside them. The entry is keyed by the serving
# version and by a hash of the checker's source, so editing tools/knative-serving rebuilds it.
KN_MOD="$TOOLS_DIR/knative-serving"
build_knative_serving() {
  local out="$1" v="${2%%-*}" dir
  dir="$(go_env go mod download -json "knative.dev/serving@$v" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  [[ -d "$dir/config/core" ]] || { echo "knative.dev/serving@$v has no config/core (Dir: '$dir')"; return 1; }
  mkdir -p "$out/config" "$out/bin"
  cp "$dir/config/core/configmaps/features.yaml" "$dir/config/core/configmaps/deployment.yaml" \
    "$dir/config/core/300-resources/service.yaml" "$dir/LICENSE" "$out/config/"
  (cd "$KN_MOD" && go_env GOFLAGS="-buildvcs=false -mod=readonly" \
    go build -modfile="$v.mod" -trimpath -ldflags "-s -w" -o "$out/bin/knative-config-check" .)
}
verify_knative_serving() {
  local d="$1" out
  grep -q '^  name: config-deployment$' "$d/config/deployment.yaml" || { echo "no config-deployment in deployment.yaml"; return 1; }
  grep -q '^  name: config-features$' "$d/config/features.yaml" || { echo "no config-features in features.yaml"; return 1; }
  out="$(printf '%s' '{"data":{"queue-sidecar-image":"q","runtime-class-name":"\"crun\": {\"selector\": {\"a\": \"b\"}}"},"labels":[{"a":"b"}]}' | "$d/bin/knative-config-check")" || return 1
  [[ "$out" == *'"picks":["crun"]'* ]] || { echo "knative-config-check answered: $out"; return 1; }
  echo "knative-config-check: $out"
}
mkdir -p "$REPO/.tools/knative-serving"
for kv in "$KNATIVE_SERVING_OLDEST" "$KNATIVE_SERVING_NEWEST"; do
  [[ -f "$KN_MOD/$kv.mod" ]] || die "tools/knative-serving/$kv.mod is missing (see tools/README.md)"
  kn_hash="$(cat "$KN_MOD/main.go" "$KN_MOD/$kv.mod" "$KN_MOD/$kv.sum" | sha256sum | cut -c1-12)"
  cached_build knative-serving "$kv-$kn_hash" build_knative_serving verify_knative_serving
  ln -sfn "$CACHED_DIR" "$REPO/.tools/knative-serving/$kv"
done

fi

# What the node tests and `npm run demo -- --knative` use.
if knative_set; then

# ---------------------------------------------------------------- Knative Serving itself (the node tests' real Knative)

# The five binaries a Knative Serving release ships as images, built from the module as `ko` builds them (static,
# -trimpath), and its config/core as the module serves it. A module zip holds no symlinks, and config/core's
# symlinks into knative.dev/networking and knative.dev/caching (the CRDs of Ingress, Certificate,
# ServerlessService, ClusterDomainClaim and Image, and config-network) are missing from it: they are taken from
# those modules at the versions serving's go.mod requires, under the names the symlinks have in the release.
KN_CMDS=(controller webhook activator autoscaler queue)
build_knative_release() {
  local out="$1" v="$2" info dir gomod net cach netdir cachdir c pkgs=()
  info="$(go_env go mod download -json "knative.dev/serving@$v")" || return 1
  dir="$(sed -n 's/.*"Dir": "\(.*\)".*/\1/p' <<<"$info")"
  gomod="$(sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' <<<"$info")"
  net="$(awk '$1=="knative.dev/networking"{print $2; exit}' "$gomod")"
  cach="$(awk '$1=="knative.dev/caching"{print $2; exit}' "$gomod")"
  [[ -n "$net" && -n "$cach" ]] || { echo "cannot read knative.dev/networking and knative.dev/caching from $gomod"; return 1; }
  netdir="$(go_env go mod download -json "knative.dev/networking@$net" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  cachdir="$(go_env go mod download -json "knative.dev/caching@$cach" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
  for c in "${KN_CMDS[@]}"; do pkgs+=("knative.dev/serving/cmd/$c@$v"); done
  go_env GOBIN="$out/bin" go install -trimpath -ldflags "-s -w" "${pkgs[@]}" || return 1
  mkdir -p "$out/config"
  cp -r "$dir/config/core" "$out/config/core" && chmod -R u+w "$out/config"
  find "$out/config" -name '*.go' -delete
  cp "$netdir/config/certificate.yaml" "$netdir/config/domain-claim.yaml" "$netdir/config/ingress.yaml" \
    "$netdir/config/serverlessservice.yaml" "$out/config/core/300-resources/"
  cp "$netdir/config/config-network.yaml" "$out/config/core/configmaps/network.yaml"
  cp "$cachdir/config/image.yaml" "$out/config/core/300-imagecache.yaml"
  cp "$dir/LICENSE" "$out/"
  printf '{"serving":"%s","networking":"%s","caching":"%s"}\n' "$v" "$net" "$cach" >"$out/modules.json"
}
verify_knative_release() {
  local d="$1" c
  for c in "${KN_CMDS[@]}"; do
    [[ -x "$d/bin/$c" ]] || { echo "bin/$c is missing"; return 1; }
    file -L "$d/bin/$c" | grep -q 'statically linked' || { echo "bin/$c is not statically linked"; return 1; }
  done
  for c in controller webhook activator autoscaler; do
    grep -q "image: ko://knative.dev/serving/cmd/$c\$" "$d/config/core/deployments/$c.yaml" || { echo "config/core/deployments/$c.yaml names no ko://…/cmd/$c image"; return 1; }
  done
  grep -q '^  name: config-network$' "$d/config/core/configmaps/network.yaml" || { echo "no config-network"; return 1; }
  grep -q '^  name: serverlessservices.networking.internal.knative.dev$' "$d/config/core/300-resources/serverlessservice.yaml" || { echo "no ServerlessService CRD"; return 1; }
  echo "knative serving $(cat "$d/modules.json"), $(du -sm "$d" | cut -f1) MB"
}
mkdir -p "$REPO/.tools/knative-serving"
cached_build knative-release "$KNATIVE_SERVING_VERSION" build_knative_release verify_knative_release
ln -sfn "$CACHED_DIR" "$REPO/.tools/knative-serving/release"

fi

if all_set; then

# ---------------------------------------------------------------- lint gate: kube-score, checkov

build_kube_score() {
  go_env GOBIN="$1" go install -trimpath -ldflags "-s -w -X main.version=$2" "github.com/zegl/kube-score/cmd/kube-score@$2"
}
verify_kube_score() {
  local v; v="$("$1/kube-score" version)" || return 1
  [[ "$v" == *"${KUBE_SCORE_VERSION#v}"* ]] || { echo "kube-score reports '$v', expected $KUBE_SCORE_VERSION"; return 1; }
  echo "$v"
}
cached_build kube-score "$KUBE_SCORE_VERSION" build_kube_score verify_kube_score
link "$CACHED_DIR/kube-score" "$BIN/kube-score"

# checkov is Python: a venv of its own in the cache. The entry is built in a temporary directory and then
# renamed, which breaks the absolute shebangs of the venv's scripts: the wrapper runs the venv's python instead.
build_checkov() {
  python3 -m venv "$1/venv" && "$1/venv/bin/pip" install --quiet --disable-pip-version-check "checkov==$2" || return 1
  printf '%s\n' '#!/bin/sh' 'here="$(dirname "$(readlink -f "$0")")"' 'exec "$here/venv/bin/python3" -W ignore::SyntaxWarning -m checkov.main "$@"' >"$1/checkov"
  chmod 755 "$1/checkov"
}
verify_checkov() {
  local v; v="$("$1/checkov" --version)" || return 1
  [[ "$v" == "$CHECKOV_VERSION" ]] || { echo "checkov reports '$v', expected $CHECKOV_VERSION"; return 1; }
  echo "checkov $v"
}
cached_build checkov "$CHECKOV_VERSION" build_checkov verify_checkov
link "$CACHED_DIR/checkov" "$BIN/checkov"

# ---------------------------------------------------------------- the original knawd-deployer's manager (upgrade tests)

# The original 1.x node manager (Rust), built from its unchanged sources beside the checkout
# (../shared/original, or KNAWD_ORIGINAL_SRC) with the dependency versions pinned in
# tools/original-manager/Cargo.lock, so the upgrade tests reproduce what it does to a node. Keyed by a hash of
# its sources, the lock file and the Rust toolchain. cargo fetches the crates from crates.io.
ORIGINAL_SRC="${KNAWD_ORIGINAL_SRC:-$REPO/../shared/original}"
[[ -f "$ORIGINAL_SRC/Cargo.toml" && -d "$ORIGINAL_SRC/manager/src" ]] ||
  die "the original knawd-deployer's sources are not at $ORIGINAL_SRC (set KNAWD_ORIGINAL_SRC)"
command -v cargo >/dev/null 2>&1 || die "cargo is not on PATH (needed to build the original knawd-deployer's manager)"
build_original_manager() {
  local out="$1"
  mkdir -p "$out/src"
  cp "$ORIGINAL_SRC/Cargo.toml" "$TOOLS_DIR/original-manager/Cargo.lock" "$out/src/"
  cp -R "$ORIGINAL_SRC/manager" "$out/src/manager"
  # A shared target directory keeps the dependencies compiled across source changes.
  (cd "$out/src" && CARGO_TARGET_DIR="$CACHE/cargo-target-original-manager" cargo build --locked --bin manager) || return 1
  cp "$CACHE/cargo-target-original-manager/debug/manager" "$out/manager"
}
verify_original_manager() {
  local v; v="$("$1/manager" version)" || return 1
  [[ "$v" == "Manager 0.1 by Anton Whalley" ]] || { echo "manager version answered '$v'"; return 1; }
  echo "$v"
}
om_hash="$( (cd "$ORIGINAL_SRC" && find Cargo.toml manager -type f -not -path 'manager/mocks/*' | LC_ALL=C sort | xargs sha256sum; sha256sum < "$TOOLS_DIR/original-manager/Cargo.lock"; rustc --version) | sha256sum | cut -c1-12)"
cached_build original-manager "$om_hash" build_original_manager verify_original_manager
link "$CACHED_DIR/manager" "$BIN/original-manager"
fi

# ---------------------------------------------------------------- the installer image (end-to-end tests install from it)

say "image (npm run image): checking its components, usually 20 min cold, most of it the wasmtime C API (each names its log below) ..."
bash "$REPO/runtime-artifacts/build-image.sh" || die "npm run image failed (see its output above)"

say "tools ready in $REPO/.tools (cache: $CACHE)"
