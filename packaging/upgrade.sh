#!/usr/bin/env bash
# Upgrade crowdsec-apiban-bridge in place: the new binary must pass -t on
# the installed configuration before it replaces the old one; the
# configuration, the registrations and the state are kept; the unit file
# and the bouncer's drop-in are refreshed, the service user created and
# handed its files if an older install had none, and a running service
# restarted.
#
# Variables as for install.sh (DESTDIR, BINDIR, CONFIG_DIR, UNIT_DIR,
# SYSTEMD, SYSTEMCTL, BIN_SRC).
. "$(dirname "$0")/_lib.sh"

for arg in "$@"; do
  case "$arg" in
    -y | --yes | --unattended) NONINTERACTIVE=1 ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    *) die "unknown argument $arg (see --help)" ;;
  esac
done

require_root
src_bin=$(find_source_binary)
config=$(root "$CONFIG")
[ -f "$config" ] || die "$config not found: run install.sh first"
[ -x "$(root "$BIN")" ] || die "$(root "$BIN") not found: run install.sh first"

# New keys have defaults, so an old file keeps working; if the new binary
# disagrees, say so and change nothing.
if ! "$src_bin" -c "$config" -t; then
  die "the new binary rejects $config: nothing changed; fix the file and run upgrade.sh again"
fi
old=$("$(root "$BIN")" -V 2>/dev/null || echo unknown)
install_binary "$src_bin"
install_unit
chmod 0600 "$config"
# Installs from before the unit ran as its own user: create it, hand it
# its files, grant the bouncer's capabilities if it is enabled.
ensure_user
own_service_files "$config"
bouncer_dropin "$config"
say "upgraded: $old -> $("$(root "$BIN")" -V)"

if use_systemd; then
  "$SYSTEMCTL" daemon-reload
  if "$SYSTEMCTL" is-active --quiet "$NAME"; then
    "$SYSTEMCTL" restart "$NAME"
    say "restarted $NAME"
  fi
fi
