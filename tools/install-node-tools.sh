# Tools of the single-node cluster harness (demo/cluster, `npm run test:node`), sourced by
# tools/install-tools.sh, which provides the helpers used here (apt_check, cached_build, go_env, link, say, die).
# Kept apart so that other tool additions merge without touching these lines. Two entry points:
#   node_tools_apt_checks   Debian packages the node needs (called with the other apt checks)
#   node_tools_build        kubelet, kube-controller-manager, kube-scheduler, kube-proxy (from tools/kube-node,
#                           the same Kubernetes release as kube-apiserver) and the node's PID 1 supervisor

node_tools_apt_checks() {
  # kube-proxy's iptables mode and the CNI bridge + host-local plugins of the node's pod network.
  apt_check iptables has_cmd iptables
  apt_check containernetworking-plugins test -x /usr/lib/cni/bridge
}

KUBE_NODE_MOD="$TOOLS_DIR/kube-node"
KUBE_NODE_TOOLS=(kubelet kube-controller-manager kube-scheduler kube-proxy)

# build_kube_node_tool TOOL OUT VERSION
build_kube_node_tool() {
  local name="$1" out="$2" v="$3"
  (cd "$KUBE_NODE_MOD" && go_env GOFLAGS="-buildvcs=false -mod=readonly" \
    go build -trimpath -ldflags "$(k8s_ldflags "$v")" -o "$out/$name" "k8s.io/kubernetes/cmd/$name")
}
verify_kube_node_tool() { # TOOL DIR
  local v; v="$("$2/$1" --version)" || return 1
  [[ "$v" == "Kubernetes $K8S_VERSION" ]] || { echo "$1 reports '$v', expected $K8S_VERSION"; return 1; }
  echo "$v"
}
for t in "${KUBE_NODE_TOOLS[@]}"; do
  eval "build_$t() { build_kube_node_tool $t \"\$@\"; }; verify_$t() { verify_kube_node_tool $t \"\$@\"; }"
done

# The supervisor that is PID 1 of the node and, as `systemctl`, its shim (demo/cluster/supervisor).
# Keyed by the hash of its sources: any edit builds it once more.
SUPERVISOR_SRC="$REPO/demo/cluster/supervisor"
build_node_supervisor() {
  (cd "$SUPERVISOR_SRC" && go_env go build -trimpath -ldflags "-s -w" -o "$1/node-supervisor" .)
}
verify_node_supervisor() { "$1/node-supervisor" --version; }

node_tools_build() {
  grep -qE "^(require)?[[:space:]]*k8s\.io/kubernetes $K8S_VERSION( |\$)" "$KUBE_NODE_MOD/go.mod" ||
    die "tools/kube-node/go.mod does not require k8s.io/kubernetes $K8S_VERSION (run tools/kube-node/update.sh)"
  local t
  for t in "${KUBE_NODE_TOOLS[@]}"; do
    cached_build "$t" "$K8S_VERSION" "build_$t" "verify_$t"
    link "$CACHED_DIR/$t" "$BIN/$t"
  done
  local src_hash
  src_hash="$(cd "$SUPERVISOR_SRC" && cat go.mod ./*.go | sha256sum | cut -c1-12)"
  cached_build node-supervisor "$src_hash" build_node_supervisor verify_node_supervisor
  link "$CACHED_DIR/node-supervisor" "$BIN/node-supervisor"
}
