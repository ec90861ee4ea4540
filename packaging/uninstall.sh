#!/usr/bin/env bash
# Remove crowdsec-apiban-bridge and everything it installed: the service,
# optionally this bridge's decisions in LAPI, its machine and bouncer
# registrations, its firewall objects, unit, configuration, state, logs and
# binary.
#
#   PURGE_DECISIONS=1 (or --purge-decisions)  expire this bridge's
#                     decisions in LAPI first (`crowdsec-apiban-bridge flush`)
#   KEEP_CONFIG=1     keep the configuration files
#   Variables as for install.sh (DESTDIR, CSCLI, SYSTEMD, ...).
. "$(dirname "$0")/_lib.sh"

PURGE_DECISIONS=${PURGE_DECISIONS:-0}
KEEP_CONFIG=${KEEP_CONFIG:-0}
for arg in "$@"; do
  case "$arg" in
    -y | --yes | --unattended) NONINTERACTIVE=1 ;;
    --purge-decisions) PURGE_DECISIONS=1 ;;
    --keep-config) KEEP_CONFIG=1 ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    *) die "unknown argument $arg (see --help)" ;;
  esac
done

require_root
config=$(root "$CONFIG")
bin=$(root "$BIN")

if use_systemd; then
  "$SYSTEMCTL" disable --now "$NAME" 2>/dev/null || true
fi

if [ "$PURGE_DECISIONS" != 1 ] && [ "$NONINTERACTIVE" != 1 ] && [ -t 0 ] && [ -f "$config" ]; then
  read -rp "Expire this bridge's decisions in LAPI too? [y/N] " answer
  case "$answer" in [yY]*) PURGE_DECISIONS=1 ;; esac
fi
if [ "$PURGE_DECISIONS" = 1 ] && [ -x "$bin" ] && [ -f "$config" ]; then
  # The machine must still exist for this.
  # As the state's owner (the service user): see docs/operations.md.
  owner=$(stat -c %U "$(root "$STATE_DIR")" 2>/dev/null || echo root)
  runuser -u "$owner" -- "$bin" -c "$config" flush || say "flush failed: remove them with cscli decisions delete --origin apiban"
fi

if have_cscli && [ -f "$config" ]; then
  machine=$(get_key crowdsec login "$config")
  if [ -n "$machine" ]; then
    if "$CSCLI" machines delete "$machine" >/dev/null 2>&1; then say "deleted machine $machine"; fi
  fi
  if [ -f "$config.id" ]; then
    bouncer=$(cat "$config.id")
    if "$CSCLI" bouncers delete "$bouncer" >/dev/null 2>&1; then say "deleted bouncer $bouncer"; fi
  fi
fi

# Firewall objects of the embedded bouncer (it removes them itself on a
# clean stop unless keep_on_exit): never on the host from a DESTDIR run.
# The binary removes only the objects that carry its marker, and names
# any object with its names that it did not create (left alone).
if [ -z "$DESTDIR" ] && [ -x "$bin" ] && [ -f "$config" ]; then
  "$bin" -c "$config" remove-firewall ||
    say "some firewall objects were not removed (see above): the bridge removes only what it created"
fi

rm -f "$(root "$UNIT")" "$(root "$DROPIN")"
rmdir "$(root "$DROPIN_DIR")" 2>/dev/null || true
if use_systemd; then "$SYSTEMCTL" daemon-reload || true; fi
if [ "$KEEP_CONFIG" != 1 ]; then
  rm -f "$config" "$config.local" "$config.id"
fi
rm -rf "$(root "$STATE_DIR")"
rm -f "$(root "$LOG_DIR")/$NAME.log" "$(root "$LOG_DIR")/$NAME"-*.log "$(root "$LOG_DIR")/$NAME"-*.log.gz
rm -rf "$(root "$LOG_DIR")/$NAME"
rm -f "$bin"
say "removed $NAME"
