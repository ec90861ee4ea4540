#!/usr/bin/env bash
# Runs the fault-injection and end-to-end suites against Debian bookworm's
# crowdsec 1.4.6 LAPI instead of the v1.7.8 one the tests build. The
# package is downloaded and unpacked into a cache directory, not installed:
# nothing on the machine changes. Usage: debian146.sh CACHE_DIR [go test args]
set -euo pipefail
dir=${1:?usage: debian146.sh CACHE_DIR [go test args]}
shift
if [ ! -x "$dir/crowdsec" ] || [ ! -x "$dir/cscli" ]; then
  mkdir -p "$dir/deb"
  (
    cd "$dir/deb"
    if ! apt-get download crowdsec; then
      apt-get update -qq
      apt-get download crowdsec
    fi
    dpkg-deb -x crowdsec_*.deb root
    cp root/usr/bin/crowdsec root/usr/bin/cscli "$dir/"
  )
fi
# Read all of the output first: grep -m1 on a pipe would SIGPIPE crowdsec
# and fail the script under pipefail.
version_text=$("$dir/crowdsec" -version 2>&1)
grep -m1 version <<<"$version_text"
# TestV1WithCredentialsFileAndLAPIAllowlist creates an allowlist with
# `cscli allowlists`, which only exists from 1.6.6; the bridge's handling of
# a LAPI without allowlists is exercised by every test here instead (it
# logs "LAPI has no allowlists (before 1.6.6)" and applies its own).
CROWDSEC_BIN_DIR="$dir" go test -race -count=1 -timeout 30m \
  -skip 'TestV1WithCredentialsFileAndLAPIAllowlist' "$@" ./test/faults/ ./test/e2e/
