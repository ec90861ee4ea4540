# shellcheck shell=bash
# Shared by install.sh, upgrade.sh and uninstall.sh: paths, the cscli and
# systemctl wrappers, and the config editor. Everything honours DESTDIR, a
# throw-away root for tests and packaging; with DESTDIR set, services and
# firewall objects of the host are never touched.
set -euo pipefail
shopt -u patsub_replacement 2>/dev/null || true

NAME=crowdsec-apiban-bridge
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DESTDIR=${DESTDIR:-}
BINDIR=${BINDIR:-/usr/local/bin}
CONFIG_DIR=${CONFIG_DIR:-/etc/crowdsec/bouncers}
UNIT_DIR=${UNIT_DIR:-/etc/systemd/system}
STATE_DIR=${STATE_DIR:-/var/lib/$NAME}
LOG_DIR=${LOG_DIR:-/var/log}
CSCLI=${CSCLI:-cscli}
SYSTEMCTL=${SYSTEMCTL:-systemctl}
NONINTERACTIVE=${NONINTERACTIVE:-0}

# shellcheck disable=SC2034 # used by the scripts that source this file
CONFIG=$CONFIG_DIR/$NAME.yaml
BIN=$BINDIR/$NAME
UNIT=$UNIT_DIR/$NAME.service

say() { printf '%s\n' "$*"; }
die() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

# root PATH: the path inside DESTDIR.
root() { printf '%s%s' "$DESTDIR" "$1"; }

require_root() {
  if [ -z "$DESTDIR" ] && [ "$(id -u)" != 0 ]; then
    die "run as root (or set DESTDIR to install into a throw-away root)"
  fi
}

# use_systemd: SYSTEMD=yes|no|auto. auto means yes only on a live system
# (no DESTDIR) booted with systemd.
use_systemd() {
  case "${SYSTEMD:-auto}" in
    yes) return 0 ;;
    no) return 1 ;;
  esac
  [ -z "$DESTDIR" ] && [ -d /run/systemd/system ] && command -v "$SYSTEMCTL" >/dev/null 2>&1
}

have_cscli() { command -v "$CSCLI" >/dev/null 2>&1; }

# The binary and template to install: beside this script (release
# tarball) or in the source tree after `make build`.
find_source_binary() {
  local c
  for c in "${BIN_SRC:-}" "$HERE/$NAME" "$HERE/../bin/$NAME"; do
    if [ -n "$c" ] && [ -x "$c" ]; then printf '%s' "$c"; return; fi
  done
  die "no $NAME binary: set BIN_SRC or run 'make build' first"
}

find_template() {
  local c
  for c in "${CONFIG_TEMPLATE:-}" "$HERE/$NAME.yaml" "$HERE/../config/$NAME.yaml"; do
    if [ -n "$c" ] && [ -f "$c" ]; then printf '%s' "$c"; return; fi
  done
  die "no configuration template: set CONFIG_TEMPLATE"
}

# install_binary SRC: copy, then rename over the old one, so a running
# daemon never sees a half-written file.
install_binary() {
  local dst; dst=$(root "$BIN")
  mkdir -p "$(dirname "$dst")"
  cp "$1" "$dst.new"
  chmod 0755 "$dst.new"
  mv -f "$dst.new" "$dst"
}

install_unit() {
  local dst; dst=$(root "$UNIT")
  mkdir -p "$(dirname "$dst")"
  sed "s#@BINDIR@#$BINDIR#g" "$HERE/$NAME.service" >"$dst.new"
  chmod 0644 "$dst.new"
  mv -f "$dst.new" "$dst"
}

# The unit runs as this system user with no capability; the embedded
# bouncer's capabilities come from a drop-in (docs/operations.md#systemd).
SERVICE_USER=$NAME
DROPIN_DIR=/etc/systemd/system/$NAME.service.d
DROPIN=$DROPIN_DIR/bouncer.conf

# ensure_user: the service's system user and group, on the live system
# only (a DESTDIR has no user database of its own).
ensure_user() {
  [ -z "$DESTDIR" ] || return 0
  getent passwd "$SERVICE_USER" >/dev/null && return 0
  useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin --comment "CrowdSec APIBAN bridge" "$SERVICE_USER" ||
    die "cannot create the system user $SERVICE_USER"
  say "created system user $SERVICE_USER"
}

# own_service_files CONFIG: the service user owns (and alone reads) its
# configuration, its overlay and its state directory.
own_service_files() {
  [ -z "$DESTDIR" ] || return 0
  local f
  for f in "$1" "$1.local"; do
    if [ -f "$f" ]; then chown "$SERVICE_USER:$SERVICE_USER" "$f" && chmod 0600 "$f"; fi
  done
  if [ -d "$STATE_DIR" ]; then chown -R "$SERVICE_USER:$SERVICE_USER" "$STATE_DIR"; fi
}

# bouncer_dropin CONFIG: with bouncer.enabled in CONFIG, the drop-in that
# grants CAP_NET_ADMIN (nftables and ipset over netlink), plus CAP_NET_RAW
# in ipset mode (iptables' set match asks ipset over a raw socket);
# without it, no drop-in.
bouncer_dropin() {
  local dst; dst=$(root "$DROPIN")
  if [ "$(get_key bouncer enabled "$1")" != true ]; then
    rm -f "$dst"
    rmdir "$(root "$DROPIN_DIR")" 2>/dev/null || true
    return 0
  fi
  local caps=CAP_NET_ADMIN
  if [ "$(get_key bouncer mode "$1")" = ipset ]; then caps="CAP_NET_ADMIN CAP_NET_RAW"; fi
  mkdir -p "$(root "$DROPIN_DIR")"
  printf '%s\n' "# Written by $NAME's installer: the embedded firewall bouncer's" \
    "# capabilities (bouncer.enabled). Nothing else is granted." \
    "[Service]" "AmbientCapabilities=$caps" "CapabilityBoundingSet=$caps" >"$dst.new"
  chmod 0644 "$dst.new"
  mv -f "$dst.new" "$dst"
  say "granted the service $caps for the embedded bouncer ($DROPIN)"
}

# set_key SECTION KEY VALUE FILE: replace KEY's value inside the top-level
# SECTION (SECTION "" means a top-level key), keeping its comment. VALUE is
# written YAML single-quoted, so any character is safe. VALUE (a secret,
# often) reaches awk through a pipe from the printf builtin: never through
# a process's arguments or environment.
set_key() {
  local tmp; tmp=$(mktemp "$4.XXXXXX")
  printf '%s\n' "$3" | SECTION=$1 KEY=$2 awk '
    BEGIN { getline value <"-" }
    function quote(s) { gsub(/\047/, "\047\047", s); return "\047" s "\047" }
    /^[A-Za-z_]+:/ { split($0, a, ":"); section = a[1] }
    {
      want = ENVIRON["SECTION"] == "" ? "^" ENVIRON["KEY"] ":" : "^  " ENVIRON["KEY"] ":"
      insec = ENVIRON["SECTION"] == "" || section == ENVIRON["SECTION"]
      if (!done && insec && $0 ~ want) {
        indent = ENVIRON["SECTION"] == "" ? "" : "  "
        comment = ""
        if (match($0, /[ \t]+#.*$/)) comment = substr($0, RSTART)
        print indent ENVIRON["KEY"] ": " quote(value) comment
        done = 1
        next
      }
      print
    }
    END { if (!done) exit 3 }
  ' "$4" >"$tmp" || { rm -f "$tmp"; die "cannot set $1.$2 in $4"; }
  chmod 0600 "$tmp"
  mv -f "$tmp" "$4"
}

# first_line: the first line of standard input, without a trailing CR or
# surrounding blanks (a key pasted from a Windows file or with a space).
first_line() {
  local line=
  IFS= read -r line || true
  line=${line%$'\r'}
  line=${line#"${line%%[![:space:]]*}"}
  printf '%s' "${line%"${line##*[![:space:]]}"}"
}

# get_key SECTION KEY FILE: the value, unquoted.
get_key() {
  SECTION=$1 KEY=$2 awk '
    /^[A-Za-z_]+:/ { split($0, a, ":"); section = a[1] }
    section == ENVIRON["SECTION"] && $0 ~ "^  " ENVIRON["KEY"] ":" {
      v = $0; sub(/^[^:]*:[ \t]*/, "", v); sub(/[ \t]+#.*$/, "", v)
      if (v ~ /^\047.*\047$/) { v = substr(v, 2, length(v) - 2); gsub(/\047\047/, "\047", v) }
      else if (v ~ /^".*"$/) v = substr(v, 2, length(v) - 2)
      print v; exit
    }
  ' "$3"
}

MACHINE_NAME=${MACHINE_NAME:-$NAME}

# register_machine CONFIG: a machine for the bridge, its credentials
# written into CONFIG.
register_machine() {
  local config=$1
  # cscli writes url (read from its own config: the LAPI this host uses),
  # login and a generated password; the file is read and removed.
  local creds; creds=$(mktemp)
  if ! "$CSCLI" machines add "$MACHINE_NAME" --auto --force -f "$creds" >/dev/null; then
    rm -f "$creds"
    die "cscli machines add $MACHINE_NAME failed"
  fi
  local url password
  url=$(sed -n 's/^url: *//p' "$creds" | tr -d "\"'")
  password=$(sed -n 's/^password: *//p' "$creds" | tr -d "\"'")
  rm -f "$creds"
  [ -n "$password" ] || die "cscli wrote no password for $MACHINE_NAME"
  set_key crowdsec login "$MACHINE_NAME" "$config"
  set_key crowdsec password "$password" "$config"
  if [ -n "$url" ]; then set_key crowdsec lapi_url "$url" "$config"; fi
  say "registered machine $MACHINE_NAME with LAPI ${url:-(default URL)}"
}

# register_bouncer CONFIG: a bouncer key for the embedded bouncer, enabled
# in CONFIG, its name kept in CONFIG.id (the CrowdSec packaging convention).
register_bouncer() {
  local config=$1
  local id key
  id="$NAME-fw-$(date +%s)"
  key=$("$CSCLI" -oraw bouncers add "$id") || die "cscli bouncers add $id failed"
  set_key bouncer api_key "$key" "$config"
  set_key bouncer enabled true "$config"
  # set_key quotes; a bare boolean reads better.
  sed -i "s/^  enabled: 'true'/  enabled: true/" "$config"
  printf '%s\n' "$id" >"$config.id"
  chmod 0600 "$config.id"
  say "registered bouncer $id"
}
