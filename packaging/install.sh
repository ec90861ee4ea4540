#!/usr/bin/env bash
# Install crowdsec-apiban-bridge the way CrowdSec's own remediation
# components install: binary in /usr/local/bin, configuration (mode 0600,
# owned by the service user) in /etc/crowdsec/bouncers, a machine
# registered with cscli, a hardened systemd unit enabled and started.
#
# The APIBAN key never goes on a command line. It is read from:
#   --api-key-file PATH  the first line of PATH
#   --api-key-stdin      the first line of standard input
#                        (e.g. `pass apiban | install.sh --api-key-stdin`)
#   a prompt             when standard input is a terminal (not echoed)
#   APIBAN_CLIENT_CONFIG an apiban-iptables-client config.json (its APIKEY);
#                        the cursor is deliberately not taken: see
#                        docs/operations.md
# (APIBAN_API_KEY in the environment still works, but sudo may log it and
# the shell keeps it in its history: prefer the forms above.)
#
# Options and variables:
#   --with-bouncer, WITH_BOUNCER=1  also register a bouncer key, enable the
#                    embedded firewall bouncer and grant the unit
#                    CAP_NET_ADMIN through a drop-in
#   -y, NONINTERACTIVE=1  never prompt; fail when something is missing
#   --force, FORCE=1 overwrite an existing configuration
#   MACHINE_NAME     machine registered with cscli (crowdsec-apiban-bridge)
#   DESTDIR, BINDIR, CONFIG_DIR, UNIT_DIR, STATE_DIR  where things go
#   CSCLI            the cscli command (default cscli)
#   SYSTEMD=auto|yes|no, SYSTEMCTL
#   BIN_SRC, CONFIG_TEMPLATE  what to install (default: beside this script)
. "$(dirname "$0")/_lib.sh"

WITH_BOUNCER=${WITH_BOUNCER:-0}
FORCE=${FORCE:-0}

KEY_FILE=
KEY_STDIN=0
while [ $# -gt 0 ]; do
  case "$1" in
    -y | --yes | --unattended) NONINTERACTIVE=1 ;;
    --with-bouncer) WITH_BOUNCER=1 ;;
    --force) FORCE=1 ;;
    --api-key-stdin) KEY_STDIN=1 ;;
    --api-key-file) [ $# -ge 2 ] || die "--api-key-file needs a path"; KEY_FILE=$2; shift ;;
    --api-key-file=*) KEY_FILE=${1#--api-key-file=} ;;
    -h | --help) sed -n '2,31p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
  shift
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
  if [ -n "$KEY_FILE" ]; then
    [ -f "$KEY_FILE" ] && [ -r "$KEY_FILE" ] || die "--api-key-file: cannot read $KEY_FILE"
    APIBAN_API_KEY=$(first_line <"$KEY_FILE")
    [ -n "$APIBAN_API_KEY" ] || die "--api-key-file: $KEY_FILE is empty"
    return
  fi
  if [ "$KEY_STDIN" = 1 ]; then
    APIBAN_API_KEY=$(first_line)
    [ -n "$APIBAN_API_KEY" ] || die "--api-key-stdin: standard input held no key"
    return
  fi
  if [ -n "${APIBAN_API_KEY:-}" ]; then return; fi
  if [ -n "${APIBAN_CLIENT_CONFIG:-}" ]; then
    APIBAN_API_KEY=$(key_from_client_config "$APIBAN_CLIENT_CONFIG")
    [ -n "$APIBAN_API_KEY" ] || die "APIBAN_CLIENT_CONFIG: no APIKEY in $APIBAN_CLIENT_CONFIG"
    say "APIBAN key taken from $APIBAN_CLIENT_CONFIG"
    return
  fi
  if [ "$NONINTERACTIVE" = 1 ] || [ ! -t 0 ]; then
    die "no APIBAN key: give it with --api-key-file PATH or --api-key-stdin, or run on a terminal to be asked (get a key at https://apiban.org)"
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
ensure_user
own_service_files "$config"

install_unit
say "installed $(root "$UNIT")"
bouncer_dropin "$config"

# The installed binary checks the installed file.
if ! "$(root "$BIN")" -c "$config" -t >/dev/null; then
  die "the configuration does not pass -t: fix $config and run $BIN -c $CONFIG -t"
fi

if use_systemd; then
  "$SYSTEMCTL" daemon-reload
  "$SYSTEMCTL" enable --now "$NAME"
  say "started $NAME: systemctl status $NAME; $NAME status"
else
  say "systemd not used: run '$BIN -c $CONFIG' under your supervisor, as the user $SERVICE_USER"
  say "  (the embedded bouncer also needs CAP_NET_ADMIN; see docs/operations.md#systemd)"
fi
