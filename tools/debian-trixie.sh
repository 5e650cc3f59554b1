#!/usr/bin/env bash
# Makes Debian trixie's packages reachable through apt WITHOUT letting anything on this machine move to them:
# trixie's binary list beside bookworm's, pinned at -10 (never installed, never upgraded to). Use it only as
#   apt-get download <pkg>/trixie     # a .deb to unpack with dpkg-deb -x into a cache directory
# never `apt-get install`: trixie's libraries need glibc 2.38+ and would drag the machine's libc along.
# No deb-src: the registry here answers 404 for trixie's source files (measured 2026-12-01 for crun 1.21-1 and
# wasmedge 0.14.1+dfsg-3.1, while bookworm's sources download), and a trixie deb-src entry would make a plain
# `apt-get source <pkg>` pick trixie's version.
#
# Idempotent: apt-get update runs only when a file was written (or KNAWD_TRIXIE_UPDATE=1).
set -euo pipefail

SOURCES=/etc/apt/sources.list.d/knawd-trixie.sources
PIN=/etc/apt/preferences.d/knawd-trixie

want_sources='Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg'
want_pin='Package: *
Pin: release n=trixie
Pin-Priority: -10'

SUDO=()
[[ $(id -u) -eq 0 ]] || SUDO=(sudo)
changed=0
put() { # put FILE CONTENT
  if [[ "$(cat "$1" 2>/dev/null)" != "$2" ]]; then
    printf '%s\n' "$2" | "${SUDO[@]}" tee "$1" >/dev/null
    changed=1
  fi
}
# The pin first: once the list exists, nothing may prefer trixie even for a moment.
put "$PIN" "$want_pin"
put "$SOURCES" "$want_sources"
if ((changed)) || [[ "${KNAWD_TRIXIE_UPDATE:-0}" == 1 ]] || ! apt-cache policy 2>/dev/null | grep -q ' n=trixie'; then
  "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 update >/dev/null
fi
# Guard: trixie must never be a candidate for an installed package.
if apt-cache policy libc6 | awk '/Candidate:/{print $2}' | grep -q 'deb13'; then
  echo "debian-trixie.sh: error: trixie's libc6 became the install candidate; check $PIN" >&2
  exit 1
fi
echo "debian trixie: reachable for apt-get download (pinned -10)"
