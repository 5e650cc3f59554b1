#!/usr/bin/env bash
# Regenerates tools/kube-node/go.mod + go.sum: kubelet, kube-controller-manager, kube-scheduler and kube-proxy
# of k8s.io/kubernetes K8S_VERSION (tools/versions.env), for the single-node cluster harness (demo/cluster).
#
# The k8s.io/* staging pins are taken from tools/kube-apiserver/go.mod (run its update.sh first after a
# version bump), so both modules always build one Kubernetes release. One exception: the module proxy does not
# serve every staging module at every patch release (k8s.io/endpointslice v0.32.13 is missing), so each module
# named in STAGING_FALLBACK below is pinned to the release given there. Commit both files afterwards.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/../versions.env"
KAS_MOD="$HERE/../kube-apiserver/go.mod"

# module=version pairs for staging modules the proxy lacks at K8S_VERSION's own patch release.
STAGING_FALLBACK=(k8s.io/endpointslice=v0.32.12)

grep -qE "^require k8s\.io/kubernetes $K8S_VERSION\$|^[[:space:]]+k8s\.io/kubernetes $K8S_VERSION( |\$)" "$KAS_MOD" ||
  { echo "update.sh: error: $KAS_MOD is not at k8s.io/kubernetes $K8S_VERSION; run tools/kube-apiserver/update.sh first" >&2; exit 1; }
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false GOWORK=off
godebug="$(grep -m1 '^godebug ' "$KAS_MOD" || true)"
{
  sed -n '1,/^module /{/^module /d;p}' "$HERE/go.mod"   # keep the header comment
  echo "module knawd-deployer/tools/kube-node"
  echo
  echo "go 1.24"
  echo
  [[ -n "$godebug" ]] && { echo "$godebug"; echo; }
  echo "tool ("
  for t in kubelet kube-controller-manager kube-scheduler kube-proxy; do echo "	k8s.io/kubernetes/cmd/$t"; done
  echo ")"
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  echo "replace ("
  sed -n '/^replace (/,/^)/{/=>/p}' "$KAS_MOD" | while read -r mod arrow target version; do
    for f in "${STAGING_FALLBACK[@]}"; do [[ "${f%%=*}" == "$mod" ]] && version="${f#*=}"; done
    echo "	$mod $arrow $target $version"
  done
  echo ")"
} >"$HERE/go.mod.new"
mv "$HERE/go.mod.new" "$HERE/go.mod"
rm -f "$HERE/go.sum"
(cd "$HERE" && go mod tidy)
echo "tools/kube-node: now k8s.io/kubernetes $K8S_VERSION"
