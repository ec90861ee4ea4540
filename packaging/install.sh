#!/usr/bin/env bash
# Install crowdsec-apiban-bridge the way CrowdSec's own remediation
# components install: binary in /usr/local/bin, configuration (mode 0600)
# in /etc/crowdsec/bouncers, a machine registered with cscli, a systemd
# unit enabled and started.
#
# Non-interactive use (every prompt has a variable):
#   APIBAN_API_KEY   the APIBAN key (else read from APIBAN_CLIENT_CONFIG, else
#                    prompted on a terminal)
#   APIBAN_CLIENT_CONFIG  an apiban-iptables-client config.json to take the
#                    key from (its APIKEY); the cursor is deliberately not
#                    taken: see docs/operations.md
#   MACHINE_NAME     machine registered with cscli (crowdsec-apiban-bridge)
#   WITH_BOUNCER=1   also register a bouncer key and enable the embedded
#                    firewall bouncer
#   NONINTERACTIVE=1 never prompt; fail when something is missing
#   FORCE=1          overwrite an existing configuration
#   DESTDIR, BINDIR, CONFIG_DIR, UNIT_DIR, STATE_DIR  where things go
#   CSCLI            the cscli command (default cscli)
#   SYSTEMD=auto|yes|no, SYSTEMCTL
#   BIN_SRC, CONFIG_TEMPLATE  what to install (default: beside this script)
. "$(dirname "$0")/_lib.sh"

WITH_BOUNCER=${WITH_BOUNCER:-0}
FORCE=${FORCE:-0}

for arg in "$@"; do
  case "$arg" in
    -y | --yes | --unattended) NONINTERACTIVE=1 ;;
    --with-bouncer) WITH_BOUNCER=1 ;;
    --force) FORCE=1 ;;
    -h | --help) sed -n '2,25p' "$0"; exit 0 ;;
    *) die "unknown argument $arg (see --help)" ;;
  esac
done

require_root
src_bin=$(find_source_binary)
template=$(find_template)
config=$(root "$CONFIG")

if [ -e "$config" ] && [ "$FORCE" != 1 ]; then
  die "$config exists: use upgrade.sh, or FORCE=1 to start again from the template"
fi

# key_from_client_config FILE: the APIKEY of apiban-iptables-client.
key_from_client_config() {
  [ -f "$1" ] || die "APIBAN_CLIENT_CONFIG: $1 not found"
  sed -n 's/.*"APIKEY"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$1" | head -n 1
}

ask_key() {
  if [ -n "${APIBAN_API_KEY:-}" ]; then return; fi
  if [ -n "${APIBAN_CLIENT_CONFIG:-}" ]; then
    APIBAN_API_KEY=$(key_from_client_config "$APIBAN_CLIENT_CONFIG")
    [ -n "$APIBAN_API_KEY" ] || die "APIBAN_CLIENT_CONFIG: no APIKEY in $APIBAN_CLIENT_CONFIG"
    say "APIBAN key taken from $APIBAN_CLIENT_CONFIG"
    return
  fi
  if [ "$NONINTERACTIVE" = 1 ] || [ ! -t 0 ]; then
    die "APIBAN_API_KEY is not set (get a key at https://apiban.org)"
  fi
  read -rsp "APIBAN API key: " APIBAN_API_KEY
  echo
  [ -n "$APIBAN_API_KEY" ] || die "an APIBAN API key is required"
}
ask_key

install_binary "$src_bin"
say "installed $(root "$BIN")"

# The configuration: the template with the key and, when cscli is there,
# the machine's credentials. Written 0600 from the first byte.
mkdir -p "$(dirname "$config")"
umask 077
cp "$template" "$config"
chmod 0600 "$config"
set_key apiban api_key "$APIBAN_API_KEY" "$config"

if have_cscli; then
  register_machine "$config"
  if [ "$WITH_BOUNCER" = 1 ]; then register_bouncer "$config"; fi
else
  say "cscli not found: set crowdsec.lapi_url, login and password in $config"
  say "  (cscli machines add $MACHINE_NAME --auto -f FILE on the LAPI host gives them)"
  [ "$WITH_BOUNCER" != 1 ] || die "--with-bouncer needs cscli"
fi

mkdir -p "$(root "$STATE_DIR")"
chmod 0700 "$(root "$STATE_DIR")"

install_unit
say "installed $(root "$UNIT")"

# The installed binary checks the installed file.
if ! "$(root "$BIN")" -c "$config" -t >/dev/null; then
  die "the configuration does not pass -t: fix $config and run $BIN -c $CONFIG -t"
fi

if use_systemd; then
  "$SYSTEMCTL" daemon-reload
  "$SYSTEMCTL" enable --now "$NAME"
  say "started $NAME: systemctl status $NAME; $NAME status"
else
  say "systemd not used: run '$BIN -c $CONFIG' under your supervisor"
fi
