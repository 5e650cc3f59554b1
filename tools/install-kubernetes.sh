# Kubernetes and etcd for the harness (demo/cluster, test/cluster, test/node), sourced by tools/install-tools.sh,
# which provides the helpers used here (cached_build, go_env, link, say, die). Kept apart so that other tool
# additions merge without touching these lines. Two releases, each from its own module (tools/README.md), each in
# .tools/kubernetes/<Kubernetes version>/bin (keyed by version: checkouts at other versions that share .tools never
# relink each other's binaries):
#   newest = K8S_VERSION + ETCD_VERSION: kube-apiserver, kubectl, etcd (every suite; the node tools come from the
#            same module and go into the same directory, tools/install-node-tools.sh)
#   oldest = K8S_OLDEST_VERSION + ETCD_OLDEST_VERSION: kube-apiserver, kubectl, etcd (the cluster cases run on the
#            oldest release too); not for `demo`
# kubectl is built at each release: the machine's kubectl is a release of its own, and kubectl supports only the
# API servers one minor version either side of it.

K8S_MODS="$TOOLS_DIR/kubernetes"
ETCD_MODS="$TOOLS_DIR/etcd"

# k8s_ldflags VERSION: the linker flags that make a Kubernetes binary report VERSION (as its release build does).
k8s_ldflags() {
  local v="$1" ld="-s -w" p
  [[ "$v" =~ ^v([0-9]+)\.([0-9]+)\. ]] || { echo "bad Kubernetes version $v" >&2; return 1; }
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$v -X $p.gitMajor=${BASH_REMATCH[1]} -X $p.gitMinor=${BASH_REMATCH[2]}"
    ld+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$ld"
}

# k8s_module_check WHICH VERSION: tools/kubernetes/WHICH/go.mod is at VERSION.
k8s_module_check() {
  grep -qE "^(require )?[[:space:]]*k8s\.io/kubernetes $2( |\$)" "$K8S_MODS/$1/go.mod" 2>/dev/null ||
    die "tools/kubernetes/$1/go.mod does not require k8s.io/kubernetes $2 (run bash tools/kubernetes/update.sh $1)"
}

# build_k8s_tool WHICH TOOL OUT VERSION: cmd/TOOL of tools/kubernetes/WHICH (-mod=readonly: the committed
# go.mod/go.sum must already be complete).
build_k8s_tool() {
  local which="$1" name="$2" out="$3" v="$4" ld
  ld="$(k8s_ldflags "$v")" || return 1
  (cd "$K8S_MODS/$which" && go_env GOFLAGS="-buildvcs=false -mod=readonly" \
    go build -trimpath -ldflags "$ld" -o "$out/$name" "k8s.io/kubernetes/cmd/$name")
}
# verify_k8s_tool TOOL VERSION DIR
verify_k8s_tool() {
  local v
  if [[ "$1" == kubectl ]]; then v="$("$3/kubectl" version --client 2>&1)" || return 1; v="${v%%$'\n'*}"
  else v="$("$3/$1" --version)" || return 1; fi
  [[ "$v" == *"$2" ]] || { echo "$1 reports '$v', expected $2"; return 1; }
  echo "$v"
}

build_etcd() { # WHICH OUT VERSION
  (cd "$ETCD_MODS/$1" && go_env GOFLAGS="-buildvcs=false -mod=readonly" \
    go build -trimpath -ldflags "-s -w" -o "$2/etcd" go.etcd.io/etcd/server/v3)
}
verify_etcd() { # VERSION DIR
  local v; v="$("$2/etcd" --version)" || return 1
  v="${v%%$'\n'*}"
  [[ "$v" == "etcd Version: ${1#v}" ]] || { echo "etcd reports '$v', expected $1"; return 1; }
  echo "$v"
}

# k8s_bin VERSION: where the binaries of Kubernetes VERSION are linked.
k8s_bin() { echo "$REPO/.tools/kubernetes/$1/bin"; }

# kubernetes_release WHICH K8S_VERSION ETCD_VERSION: kube-apiserver, kubectl and etcd of one release.
kubernetes_release() {
  local which="$1" kv="$2" ev="$3" bin t
  bin="$(k8s_bin "$kv")"
  k8s_module_check "$which" "$kv"
  grep -qE "^[[:space:]]+go\.etcd\.io/etcd/server/v3 $ev( |\$)" "$ETCD_MODS/$which/go.mod" 2>/dev/null ||
    die "tools/etcd/$which/go.mod does not require go.etcd.io/etcd/server/v3 $ev (run bash tools/etcd/update.sh $which)"
  mkdir -p "$bin"
  for t in kube-apiserver kubectl; do
    eval "build_${which}_$t() { build_k8s_tool $which $t \"\$@\"; }; verify_${which}_$t() { verify_k8s_tool $t $kv \"\$@\"; }"
    cached_build "$t" "$kv" "build_${which}_$t" "verify_${which}_$t"
    link "$CACHED_DIR/$t" "$bin/$t"
  done
  eval "build_${which}_etcd() { build_etcd $which \"\$1\"; }; verify_${which}_etcd() { verify_etcd $ev \"\$@\"; }"
  cached_build etcd "$ev" "build_${which}_etcd" "verify_${which}_etcd"
  link "$CACHED_DIR/etcd" "$bin/etcd"
}

# The newest release (every suite and `demo`); the oldest (not for `demo`) comes after the node tools, which
# reuse the Go build cache the newest kube-apiserver filled.
kubernetes_build() { kubernetes_release newest "$K8S_VERSION" "$ETCD_VERSION"; }
kubernetes_oldest_build() { kubernetes_release oldest "$K8S_OLDEST_VERSION" "$ETCD_OLDEST_VERSION"; }
