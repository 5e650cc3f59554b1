# CRI-O for the end-to-end tests: crio and pinns built from the Go module proxy, one cache entry per
# version, plus the Debian package a CRI-O daemon needs (conmon; skopeo, which loads the test images, is
# apt-checked by install-tools.sh itself).
#
# Sourced by tools/install-tools.sh (it uses that script's cached_build, link, go_env, die and say), so that
# the tool additions of other areas stay one line each there. Versions: CRIO_VERSION and
# CRIO_PREVIOUS_VERSION in tools/versions.env.
#
# Output, per version V:
#   $CACHE/crio-V/{crio,pinns}   linked as <repo>/.tools/crio/V/{crio,pinns}
#
# crio is cgo (the seccomp build tag links libseccomp); pinns is CRI-O's small static C helper that pins
# namespaces, built from the pinns/ directory of the same module. The build tags are the ones CRI-O's
# Makefile picks on a host without gpgme, btrfs or devicemapper headers.

for v in CRIO_VERSION CRIO_PREVIOUS_VERSION; do
  [[ -n "${!v:-}" ]] || die "$v is not set in tools/versions.env"
done

CRIO_APT_MISSING=()
# conmon: CRI-O's container monitor (Debian 2.1.6); libseccomp-dev and gcc/make/libc6-dev: the crio (cgo) and
# pinns (static C) builds.
for p in conmon libseccomp-dev gcc make libc6-dev; do
  has_pkg "$p" || CRIO_APT_MISSING+=("$p")
done
if ((${#CRIO_APT_MISSING[@]})); then
  [[ $(id -u) -eq 0 ]] || die "missing ${CRIO_APT_MISSING[*]}: run as root to apt-get install them"
  say "apt: installing ${CRIO_APT_MISSING[*]} ..."
  { apt-get -o DPkg::Lock::Timeout=600 update &&
    env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "${CRIO_APT_MISSING[@]}"
  } >"$CACHE/logs/apt-crio.log" 2>&1 || {
    tail -n 15 "$CACHE/logs/apt-crio.log" | sed 's/^/    /' >&2
    die "apt-get install ${CRIO_APT_MISSING[*]} failed (full log: $CACHE/logs/apt-crio.log)"
  }
fi
report_apt conmon conmon /usr/bin/conmon

# `go install module@version` needs the module's version list, which the proxy refuses for CRI-O (403), so
# the build goes through a throwaway wrapper module that requires the one version. Its go.sum starts as CRI-O's
# own (the sum database does not answer for some of CRI-O's pseudo-versions, e.g. containerd/nri in v1.34.0);
# CRI-O's module itself is checked against sum.golang.org. A build function runs with errexit off
# (cached_build calls it in an `if`), hence the && chain.
build_crio() {
  local out="$1" v="$2" m=github.com/cri-o/cri-o dir
  local tags="containers_image_ostree_stub containers_image_openpgp exclude_graphdriver_btrfs exclude_graphdriver_devicemapper seccomp"
  dir="$(go_env go mod download -json "$m@$v" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')" &&
    [[ -f "$dir/go.sum" && -d "$dir/pinns" ]] &&
    mkdir -p "$out/wrapper" &&
    printf 'module knawd.local/crio-build\n\ngo 1.26\n\nrequire %s %s\n\ntool %s/cmd/crio\n' "$m" "$v" "$m" >"$out/wrapper/go.mod" &&
    cp "$dir/go.sum" "$out/wrapper/go.sum" && chmod u+w "$out/wrapper/go.sum" &&
    (cd "$out/wrapper" && go_env go mod tidy &&
      go_env CGO_ENABLED=1 go build -trimpath -tags "$tags" \
        -ldflags "-s -w -X $m/internal/version.buildDate=1970-01-01T00:00:00Z" -o "$out/crio" "$m/cmd/crio") &&
    # The module cache is read-only: build pinns in a copy (its Makefile writes ../bin/pinns).
    cp -r "$dir/pinns" "$out/pinns-src" && chmod -R u+w "$out/pinns-src" &&
    make -C "$out/pinns-src" CC=gcc &&
    mv "$out/bin/pinns" "$out/pinns" &&
    rm -rf "$out/pinns-src" "$out/bin" "$out/wrapper"
}
# crio_reports DIR VERSION: both binaries run and crio says it is VERSION.
crio_reports() {
  local d="$1" want="${2#v}" got
  got="$("$d/crio" --version 2>&1 | awk '$1=="crio" && $2=="version"{print $3; exit}')" || return 1
  [[ "$got" == "$want" ]] || { echo "crio reports version '$got', expected $want"; return 1; }
  # pinns has no --help; without arguments it names what is missing and exits 1.
  local pinns_out; pinns_out="$("$d/pinns" 2>&1)"
  [[ "$pinns_out" == "[pinns:e]"* ]] || { echo "pinns does not run: $pinns_out"; return 1; }
  echo "crio $got (+pinns)"
}
verify_crio_latest() { crio_reports "$1" "$CRIO_VERSION"; }
verify_crio_previous() { crio_reports "$1" "$CRIO_PREVIOUS_VERSION"; }

for crio_pair in "$CRIO_VERSION:verify_crio_latest" "$CRIO_PREVIOUS_VERSION:verify_crio_previous"; do
  crio_v="${crio_pair%%:*}"
  cached_build crio "$crio_v" build_crio "${crio_pair#*:}"
  mkdir -p "$REPO/.tools/crio/$crio_v"
  link "$CACHED_DIR/crio" "$REPO/.tools/crio/$crio_v/crio"
  link "$CACHED_DIR/pinns" "$REPO/.tools/crio/$crio_v/pinns"
done
unset crio_pair crio_v
