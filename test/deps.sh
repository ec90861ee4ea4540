#!/usr/bin/env bash
# The Debian packages `make test` needs beyond Go, said once (`make test`
# and CI both run this):
#   iproute2 nftables ipset iptables  kernel firewall tests in network namespaces
#   systemd                           systemd-analyze, to rate the unit's hardening
#   make git                          the build (git describe gives the version)
#   kamailio kamailio-utils-modules   a real SIP proxy running APIBAN's recipe
#   kamailio-extra-modules sipsak       against the mirror (test/sip)
#   postgresql                        test/cluster: a throw-away PostgreSQL 15 cluster (no service)
#   time                              make bench: GNU time measures each process's own peak RSS
# apt and dpkg (the .deb test, crowdsec-firewall-bouncer downloaded with
# `apt-get download`) and util-linux are on every Debian.
# Missing packages are installed when run as root; otherwise the one
# command to run is printed and this fails.
set -euo pipefail

PACKAGES=(iproute2 nftables ipset iptables systemd make git kamailio kamailio-utils-modules kamailio-extra-modules sipsak postgresql time)

if ! command -v dpkg >/dev/null 2>&1; then
  echo "not a Debian system: install the equivalents of ${PACKAGES[*]} yourself" >&2
  exit 0
fi
need=()
for pkg in "${PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
[ ${#need[@]} -gt 0 ] || exit 0

if [ "$(id -u)" != 0 ]; then
  echo "the tests need: ${need[*]}" >&2
  echo "  sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
echo "installing what the tests need: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
