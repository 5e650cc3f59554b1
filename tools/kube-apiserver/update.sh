#!/usr/bin/env bash
# Regenerates tools/kube-apiserver/go.mod + go.sum for K8S_VERSION from
# tools/versions.env: requires k8s.io/kubernetes at that tag and pins every
# k8s.io/* staging module that its go.mod replaces with a local path to the
# matching published v0.<minor>.<patch> release. Commit both files afterwards.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$HERE/../versions.env"
v="$K8S_VERSION"
[[ "$v" =~ ^v1\.([0-9]+\.[0-9]+)$ ]] || { echo "update.sh: error: K8S_VERSION '$v' is not v1.N.M" >&2; exit 1; }
staging="v0.${BASH_REMATCH[1]}"
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false GOWORK=off
gomod="$(go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
[[ -f "$gomod" ]] || { echo "update.sh: error: cannot download k8s.io/kubernetes@$v" >&2; exit 1; }
godebug="$(grep -m1 '^godebug ' "$gomod" || true)"
{
  sed -n '1,/^module /{/^module /d;p}' "$HERE/go.mod"   # keep the header comment
  echo "module knawd-deployer/tools/kube-apiserver"
  echo
  echo "go 1.24"
  echo
  [[ -n "$godebug" ]] && { echo "$godebug"; echo; }
  echo "tool k8s.io/kubernetes/cmd/kube-apiserver"
  echo
  echo "require k8s.io/kubernetes $v"
  echo
  echo "replace ("
  grep -E '^\s+k8s.io/[a-z0-9-]+ => \./staging/' "$gomod" |
    awk -v s="$staging" '{print "\t" $1 " => " $1 " " s}'
  echo ")"
} >"$HERE/go.mod.new"
mv "$HERE/go.mod.new" "$HERE/go.mod"
rm -f "$HERE/go.sum"
(cd "$HERE" && go mod tidy)
echo "tools/kube-apiserver: now k8s.io/kubernetes $v (staging modules $staging)"
