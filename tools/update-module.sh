# Sourced by tools/{etcd,kubernetes,containerd1}/update.sh: each regenerates a go.mod + go.sum that builds an
# upstream project's commands at the version tools/versions.env pins (upstream's own go.mod has replace or
# exclude directives, so `go install` refuses it). Their shared steps: the pins, the argument, the check of the
# version's form, upstream's go.mod, and putting the new module in place.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/versions.env"
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false GOWORK=off

die() {
  echo "update.sh: error: $*" >&2
  exit 1
}

# release_version ARG NEWEST_KEY OLDEST_KEY: the version versions.env pins for ARG (newest or oldest).
release_version() {
  case "$1" in
    newest) echo "${!2}" ;;
    oldest) echo "${!3}" ;;
    *) die "unknown argument '$1': accepted: newest ($2), oldest ($3)" ;;
  esac
}

# check_version WHAT VERSION REGEX FORM: refuses a version not of FORM (BASH_REMATCH holds the match after).
check_version() {
  [[ "$2" =~ $3 ]] || die "$1 '$2' is not $4"
}

# upstream_gomod MODULE@VERSION: the path of that module's go.mod, downloaded into the module cache.
upstream_gomod() {
  local gomod
  gomod="$(go mod download -json "$1" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  [[ -f "$gomod" ]] || die "cannot download $1"
  echo "$gomod"
}

# go_directive GOMOD: the Go version its `go` line names.
go_directive() {
  awk '$1=="go"{print $2; exit}' "$1"
}

# install_module DIR: DIR/go.mod.new, written whole, becomes DIR/go.mod; go.sum is regenerated from it.
install_module() {
  mv "$1/go.mod.new" "$1/go.mod"
  rm -f "$1/go.sum"
  (cd "$1" && go mod tidy)
}
