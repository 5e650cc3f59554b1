# Tools of the single-node cluster harness (demo/cluster, `npm run test:node`), sourced by
# tools/install-tools.sh, which provides the helpers used here (apt_check, cached_build, go_env, link, say, die).
# Kept apart so that other tool additions merge without touching these lines. Entry points:
#   node_tools_apt_checks   Debian packages the node needs (called with the other apt checks)
#   node_tools_release      kubelet, kube-controller-manager, kube-scheduler, kube-proxy of one Kubernetes release,
#                           from its tools/kubernetes module (the oldest one's: called by tools/install-tools.sh)
#   node_tools_build        the newest release's node tools, containerd 1.7 (CONTAINERD1_VERSION; not for `demo`)
#                           and the node's PID 1 supervisor

node_tools_apt_checks() {
  # kube-proxy's iptables mode and the CNI bridge + host-local plugins of the node's pod network.
  apt_check iptables has_cmd iptables
  apt_check containernetworking-plugins test -x /usr/lib/cni/bridge
}

KUBE_NODE_TOOLS=(kubelet kube-controller-manager kube-scheduler kube-proxy)

# node_tools_release WHICH VERSION: the node tools of one Kubernetes release (tools/kubernetes/WHICH), linked beside
# its kube-apiserver. build_k8s_tool/verify_k8s_tool come from tools/install-kubernetes.sh (sourced before this runs).
node_tools_release() {
  local which="$1" v="$2" t
  k8s_module_check "$which" "$v"
  for t in "${KUBE_NODE_TOOLS[@]}"; do
    eval "build_${which}_$t() { build_k8s_tool $which $t \"\$@\"; }; verify_${which}_$t() { verify_k8s_tool $t $v \"\$@\"; }"
    cached_build "$t" "$v" "build_${which}_$t" "verify_${which}_$t"
    link "$CACHED_DIR/$t" "$(k8s_bin "$v")/$t"
  done
}

# containerd 1.7, the node's containerd 1.x (demo/cluster/node.ts), in .tools/containerd1/bin, built from
# tools/containerd1 (its go.mod has an exclude directive, which `go install` refuses).
build_containerd1() {
  local out="$1" v="$2" m=github.com/containerd/containerd c
  grep -qE "^[[:space:]]*(require )?$m $v( |\$)" "$TOOLS_DIR/containerd1/go.mod" ||
    { echo "tools/containerd1/go.mod does not require $m $v (run bash tools/containerd1/update.sh)"; return 1; }
  for c in containerd ctr containerd-shim-runc-v2; do
    (cd "$TOOLS_DIR/containerd1" && go_env GOFLAGS="-buildvcs=false -mod=readonly" go build -trimpath \
      -ldflags "-s -w -X $m/version.Version=$v -X $m/version.Package=$m" -o "$out/$c" "$m/cmd/$c") || return 1
  done
}
verify_containerd1() {
  local d="$1" v
  v="$("$d/containerd" --version)" || return 1
  [[ "$v" == *" $CONTAINERD1_VERSION"* ]] || { echo "containerd reports '$v', expected $CONTAINERD1_VERSION"; return 1; }
  "$d/ctr" --version >/dev/null || return 1
  "$d/containerd-shim-runc-v2" -v >/dev/null || return 1
  "$d/containerd" config default | grep -qx 'version = 2' || { echo "containerd config default has no 'version = 2'"; return 1; }
  echo "$v"
}

# The supervisor that is PID 1 of the node and, as `systemctl`, its shim (demo/cluster/supervisor).
# Keyed by the hash of its sources: any edit builds it once more.
SUPERVISOR_SRC="$REPO/demo/cluster/supervisor"
build_node_supervisor() {
  (cd "$SUPERVISOR_SRC" && go_env go build -trimpath -ldflags "-s -w" -o "$1/node-supervisor" .)
}
verify_node_supervisor() { "$1/node-supervisor" --version; }

node_tools_build() {
  node_tools_release newest "$K8S_VERSION"
  local t
  if all_set; then
    cached_build containerd1 "$CONTAINERD1_VERSION" build_containerd1 verify_containerd1
    mkdir -p "$REPO/.tools/containerd1/bin"
    for t in containerd ctr containerd-shim-runc-v2; do link "$CACHED_DIR/$t" "$REPO/.tools/containerd1/bin/$t"; done
  fi
  local src_hash
  src_hash="$(cd "$SUPERVISOR_SRC" && cat go.mod ./*.go | sha256sum | cut -c1-12)"
  cached_build node-supervisor "$src_hash" build_node_supervisor verify_node_supervisor
  link "$CACHED_DIR/node-supervisor" "$BIN/node-supervisor"
}
