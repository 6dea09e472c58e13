#!/usr/bin/env bash
# Tipline installer for a fresh Debian 12 server: packages, a service user, the code and its
# virtualenv, the configuration (with a generated session key, kept 0600), PostgreSQL or
# SQLite, migrations, nginx, the two Tor onion services and the systemd units. See
# docs/DEPLOY.md.
#
# Safe to run again: every file is written only if its content, mode or owner differs, secrets
# already made are kept, and the last line says how many things changed ("0 changes" on a
# second run with the same options).
#
#   sudo deploy/install.sh --org-key org.public.json --manifest manifest.signed.json
#
# --root DIR writes every file under DIR instead of / and runs no system command (it prints
# them): for tests and for reviewing what an install would write.
#
# Several app servers behind one source onion (docs/DEPLOY.md "Several app servers behind
# Onionbalance"): on a small frontend host, --onionbalance-frontend [--backend ADDR.onion]...
# (Tor and Onionbalance only, holding the source onion's key); on each app server,
# --onionbalance-backend MASTER.onion (and --no-journalist-onion on all but one). Without these
# options nothing of this is written.
set -euo pipefail
umask 022

usage() {
    cat <<'EOF'
usage: install.sh [options]
  --org-key FILE        the org public key file from the desk (needed on the first run)
  --manifest FILE       a signed key manifest from the desk to install (first run, or newer)
  --database KIND       postgresql (default) or sqlite
  --wheelhouse DIR      install Python packages from DIR only (pip --no-index)
  --root DIR            write under DIR, run no system command (tests, review); no venv
                        is made there, so set TIPLINE_PYTHON to a Python that can import
                        tipline (e.g. TIPLINE_PYTHON=.venv/bin/python)
  --onionbalance-frontend
                        this host is the Onionbalance frontend only: Tor, Onionbalance and
                        the source onion's key (made on the first run); no app
  --backend ADDR.onion  with --onionbalance-frontend: an app server's own source onion
                        (repeat for each; the list replaces the previous one)
  --onionbalance-backend MASTER.onion
                        this app server's source onion is a backend of MASTER (the address
                        the frontend printed)
  --no-journalist-onion with --onionbalance-backend: no journalist onion here (it stays on
                        one app server)
  -h, --help            this text
EOF
}

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ORG_KEY="" MANIFEST="" DATABASE="postgresql" WHEELHOUSE="" ROOT=""
OB_FRONTEND=0 OB_MASTER="" JOURNALIST=1 BACKENDS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --org-key) ORG_KEY="${2:?--org-key needs a file}"; shift 2 ;;
        --manifest) MANIFEST="${2:?--manifest needs a file}"; shift 2 ;;
        --database) DATABASE="${2:?--database needs postgresql or sqlite}"; shift 2 ;;
        --wheelhouse) WHEELHOUSE="${2:?--wheelhouse needs a folder}"; shift 2 ;;
        --root) ROOT="$(mkdir -p "${2:?--root needs a folder}" && cd "$2" && pwd)"; shift 2 ;;
        --onionbalance-frontend) OB_FRONTEND=1; shift ;;
        --backend) BACKENDS+=("${2:?--backend needs an onion address}"); shift 2 ;;
        --onionbalance-backend) OB_MASTER="${2:?--onionbalance-backend needs the frontend onion address}"; shift 2 ;;
        --no-journalist-onion) JOURNALIST=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done

die() { echo "install: $*" >&2; exit 1; }
say() { echo "install: $*"; }

case "$DATABASE" in postgresql | sqlite) ;; *) die "--database is postgresql or sqlite" ;; esac
[ ${#BACKENDS[@]} -eq 0 ] || [ "$OB_FRONTEND" -eq 1 ] || die "--backend goes with --onionbalance-frontend"
[ "$JOURNALIST" -eq 1 ] || [ -n "$OB_MASTER" ] || die "--no-journalist-onion goes with --onionbalance-backend"
[ "$OB_FRONTEND" -eq 0 ] || [ -z "$OB_MASTER" ] ||
    die "a host is the Onionbalance frontend or a backend, not both"
# The form of an onion address here (deploy/render.py checks its checksum too).
for address in ${OB_MASTER:+"$OB_MASTER"} ${BACKENDS[@]+"${BACKENDS[@]}"}; do
    [[ "$address" =~ ^[a-z2-7]{56}\.onion$ ]] || die "'$address' is not a v3 onion address (56 letters and digits, then .onion)"
done

USER_NAME=tipline
OPT=/opt/tipline
APP="$OPT/src"
VENV="$OPT/venv"
ETC=/etc/tipline
CONFIG="$ETC/tipline.toml"
STATE=/var/lib/tipline
CHANGES=0

# Python with tipline importable: the server's venv, or (with --root, where no venv is made)
# the one named by TIPLINE_PYTHON.
if [ -n "$ROOT" ]; then
    PY="${TIPLINE_PYTHON:-python3}"
elif [ "$OB_FRONTEND" -eq 1 ]; then
    PY=/usr/bin/python3  # no venv on a frontend: deploy/render.py's Onionbalance part needs none
else
    PY="$VENV/bin/python"
fi

changed() { CHANGES=$((CHANGES + 1)); say "$*"; }

# systemd must be running to start units; in a chroot or a container it is not, and the
# installer then installs and (if systemctl is there) enables everything, skips what needs a
# running systemd, and lists what it skipped at the end.
SYSTEMD=1
[ -z "$ROOT" ] && [ ! -d /run/systemd/system ] && SYSTEMD=0
SKIPPED=()

# A system command: run it, or with --root only show it.
run() {
    if [ -n "$ROOT" ]; then
        echo "install: would run: $*"
    else
        "$@"
    fi
}

# service ACTION...: systemctl ACTION..., or without a running systemd note it as skipped.
service() {
    if [ "$SYSTEMD" -eq 0 ]; then
        SKIPPED+=("systemctl $*")
    else
        run systemctl "$@"
    fi
}

# put SRC DEST MODE OWNER: install a file if its content, mode or owner differs.
put() {
    local src="$1" dest="$ROOT$2" mode="$3" owner="$4"
    mkdir -p "$(dirname "$dest")"
    if [ -f "$dest" ] && cmp -s "$src" "$dest"; then
        if [ "$(stat -c %a "$dest")" != "${mode#0}" ]; then
            chmod "$mode" "$dest"
            changed "fixed the mode of $2"
        fi
    else
        install -m "$mode" "$src" "$dest"
        changed "wrote $2"
    fi
    own "$2" "$owner"
}

# own PATH USER:GROUP: set the owner (not under --root, where the users do not exist).
own() {
    [ -n "$ROOT" ] && return 0
    if [ "$(stat -c %U:%G "$1")" != "$2" ]; then
        chown "$2" "$1"
        changed "set the owner of $1 to $2"
    fi
}

folder() {  # folder PATH MODE OWNER
    if [ ! -d "$ROOT$1" ]; then
        mkdir -p "$ROOT$1"
        changed "made $1"
    fi
    if [ "$(stat -c %a "$ROOT$1")" != "${2#0}" ]; then
        chmod "$2" "$ROOT$1"
        changed "set the mode of $1 to $2"
    fi
    own "$1" "$3"
}

# The port of the local PostgreSQL cluster (Debian's psql finds the default cluster), or stop
# with what to do if none runs.
# install_packages PKG...: the Debian packages of the list that are missing, installed (with
# --root only named). No recommended packages: they would bring a mail server (exim4) and more
# onto a machine that should run nothing but what is listed.
install_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    if [ -z "$ROOT" ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
        changed "installed ${missing[*]}"
    else
        say "would install: ${missing[*]}"
    fi
}

pg_port() {
    runuser -u postgres -- psql -XtAq -c "SHOW port" 2>/dev/null ||
        die "PostgreSQL is not running (pg_lsclusters shows it; without systemd: pg_ctlcluster 15 main start)"
}

TMP="$(mktemp -d)"  # root's only (the new configuration is made here)
PUBLIC="$(mktemp -d)"  # for what the service user must read: the manifest it installs
chmod 755 "$PUBLIC"
trap 'rm -rf "$TMP" "$PUBLIC"' EXIT

# Debian's torrc, kept aside once before the first replacement.
keep_debian_torrc() {  # keep_debian_torrc SHIPPED
    if [ -f "$ROOT/etc/tor/torrc" ] && [ ! -f "$ROOT/etc/tor/torrc.before-tipline" ] &&
        ! cmp -s "$1" "$ROOT/etc/tor/torrc"; then
        cp -p "$ROOT/etc/tor/torrc" "$ROOT/etc/tor/torrc.before-tipline"
        changed "kept Debian's torrc as /etc/tor/torrc.before-tipline"
    fi
}

# --- F. the Onionbalance frontend (only with --onionbalance-frontend) ---------------------
# Tor and Onionbalance, nothing of the app: this host holds the source onion's key and
# publishes its descriptor with the backends' introduction points (docs/DEPLOY.md).
if [ "$OB_FRONTEND" -eq 1 ]; then
    if [ -z "$ROOT" ]; then
        [ "$(id -u)" -eq 0 ] || die "run as root (sudo)"
    fi
    OB_ETC=/etc/onionbalance
    OB_KEY="$OB_ETC/private_keys/tipline-source.key"
    install_packages adduser ca-certificates openssl python3 tor onionbalance
    # Debian's package makes the onionbalance user and puts it in debian-tor (Tor's control
    # socket group) only when it first makes the user: make sure of the group.
    if [ -z "$ROOT" ] && ! id -nG onionbalance | grep -qw debian-tor; then
        adduser --quiet onionbalance debian-tor
        changed "added the user onionbalance to the group debian-tor"
    fi
    folder "$OB_ETC" 0755 root:root
    folder "$OB_ETC/private_keys" 0750 root:onionbalance
    # The source onion's identity: whoever has this key is the source onion. Made here once,
    # never replaced; readable by Onionbalance only.
    if [ ! -f "$ROOT$OB_KEY" ]; then
        (umask 077 && openssl genpkey -algorithm ed25519 -out "$TMP/master.key")
        put "$TMP/master.key" "$OB_KEY" 0600 onionbalance:onionbalance
    else
        if [ "$(stat -c %a "$ROOT$OB_KEY")" != 600 ]; then
            chmod 600 "$ROOT$OB_KEY"
            changed "set the mode of $OB_KEY to 600"
        fi
        own "$OB_KEY" onionbalance:onionbalance
    fi
    master="$("$PY" "$SRC/deploy/render.py" onion-address "$ROOT$OB_KEY")"
    before=$CHANGES
    if [ ${#BACKENDS[@]} -gt 0 ]; then
        "$PY" "$SRC/deploy/render.py" onionbalance "$OB_KEY" "$master" "${BACKENDS[@]}" >"$TMP/config.yaml"
        put "$TMP/config.yaml" "$OB_ETC/config.yaml" 0640 root:onionbalance
    fi
    put "$SRC/deploy/systemd/onionbalance.service.d/tipline.conf" \
        /etc/systemd/system/onionbalance.service.d/tipline.conf 0644 root:root
    keep_debian_torrc "$SRC/deploy/tor/torrc-onionbalance"
    put "$SRC/deploy/tor/torrc-onionbalance" /etc/tor/torrc 0644 root:root
    if [ "$CHANGES" -ne "$before" ]; then
        run tor --verify-config -f /etc/tor/torrc --defaults-torrc /usr/share/tor/tor-service-defaults-torrc
        service daemon-reload
        service restart tor
        if [ -f "$ROOT$OB_ETC/config.yaml" ]; then service restart onionbalance.service; fi
    fi
    units=(tor)
    [ -f "$ROOT$OB_ETC/config.yaml" ] && units+=(onionbalance.service)
    for unit in "${units[@]}"; do
        if [ -n "$ROOT" ] || [ "$SYSTEMD" -eq 0 ]; then
            say "would run: systemctl enable --now $unit"
        elif ! systemctl is-enabled --quiet "$unit" || ! systemctl is-active --quiet "$unit"; then
            systemctl enable --now --quiet "$unit"
            changed "enabled and started $unit"
        fi
    done
    cat <<EOF

Source onion (publish it):      http://$master/
Backends:                       ${BACKENDS[*]:-(none yet)}
Next: on each app server, deploy/install.sh ... --onionbalance-backend $master
(and --no-journalist-onion on all but one); then here, once more with every app server's
own source onion: deploy/install.sh --onionbalance-frontend --backend ADDR.onion ...
EOF
    if [ ! -f "$ROOT$OB_ETC/config.yaml" ]; then
        say "no backends yet: Onionbalance is not started until --backend names at least one"
    fi
    say "$CHANGES changes"
    exit 0
fi

# --- 1. the machine ---------------------------------------------------------------------
if [ -z "$ROOT" ]; then
    [ "$(id -u)" -eq 0 ] || die "run as root (sudo)"
    # shellcheck disable=SC1091  # a system file, read for VERSION_ID
    . /etc/os-release
    if [ "${ID:-}" != debian ] || [ "${VERSION_ID:-}" != 12 ]; then
        say "warning: made for Debian 12, this is ${PRETTY_NAME:-unknown}"
    fi
fi
[ -f "$SRC/static/build/libsodium.js" ] || die "$SRC/static/build is missing: run 'make static' in the source tree first"

# --- 2. Debian packages -------------------------------------------------------------------
# age and gpg: the daily digest encrypts each journalist's mail with them (docs/ADMIN.md).
# redis-server: where the app's limits are counted, shared by every worker (its own instance
# on a Unix socket, step 9; Debian's default instance on a TCP port is switched off).
packages=(adduser ca-certificates python3 python3-venv rsync nginx libnginx-mod-http-headers-more-filter tor age gpg redis-server)
[ "$DATABASE" = postgresql ] && packages+=(postgresql)
install_packages "${packages[@]}"

# --- 3. the service user ------------------------------------------------------------------
if [ -z "$ROOT" ] && ! getent passwd "$USER_NAME" >/dev/null; then
    adduser --system --group --home "$STATE" --no-create-home --shell /usr/sbin/nologin \
        --gecos "Tipline server" "$USER_NAME"
    changed "made the system user $USER_NAME"
fi
# The limits store's own user (its socket's group is the app's: tipline-redis.service).
if [ -z "$ROOT" ] && ! getent passwd tipline-redis >/dev/null; then
    adduser --system --no-create-home --home /nonexistent --shell /usr/sbin/nologin \
        --gecos "Tipline limits store" tipline-redis
    changed "made the system user tipline-redis"
fi

# --- 4. the code, and its virtualenv ---------------------------------------------------------
# The app finds templates/, static/ and migrations/ next to its package, so the tree is copied
# whole and installed in editable mode. Folders' times are not copied: Python writes
# __pycache__ into them when the installer runs the code, and the next run would see that as
# a change.
folder "$OPT" 0755 root:root
if [ "$SRC" != "$ROOT$APP" ]; then
    mkdir -p "$ROOT$APP"
    synced="$(rsync -a --omit-dir-times --delete --checksum --itemize-changes \
        --exclude=/.git --exclude=/.venv/ --exclude=/node_modules/ --exclude=/instance/ \
        --exclude=/wheelhouse/ --exclude=/build/ --exclude=/dist/ --exclude='*.egg-info/' \
        --exclude=__pycache__/ --exclude=/.mypy_cache/ --exclude=/.ruff_cache/ \
        --exclude=/.pytest_cache/ --exclude=/.hypothesis/ --exclude=/.ci/ \
        --chown=root:root --chmod=D755,F644 "$SRC/" "$ROOT$APP/" | wc -l)"
    [ "$synced" -eq 0 ] || changed "copied the code to $APP ($synced files and folders)"
fi
stamp_want="$(cat "$ROOT$APP/pyproject.toml" "$ROOT$APP/constraints.txt" | sha256sum | cut -c1-64) ${WHEELHOUSE:+offline}"
if [ "$(cat "$ROOT$VENV/.tipline-installed" 2>/dev/null || true)" != "$stamp_want" ]; then
    if [ -z "$ROOT" ]; then
        [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
        pip=("$VENV/bin/pip" install --quiet --disable-pip-version-check -c "$APP/constraints.txt")
        [ -n "$WHEELHOUSE" ] && pip+=(--no-index --find-links "$WHEELHOUSE")
        "${pip[@]}" -e "${APP}[server]"
    else
        say "would run: python3 -m venv $VENV; pip install -c constraints.txt -e '${APP}[server]'"
    fi
    mkdir -p "$ROOT$VENV"
    echo "$stamp_want" >"$ROOT$VENV/.tipline-installed"
    changed "installed the Python packages into $VENV"
fi

# --- 5. configuration ---------------------------------------------------------------------
folder "$ETC" 0750 "root:$USER_NAME"
org_b64=""
if [ -n "$ORG_KEY" ]; then
    org_b64="$("$PY" - "$ORG_KEY" <<'EOF'
import sys
from tipline.crypto.encoding import b64e
from tipline.crypto.errors import TiplineError
from tipline.crypto.keys import OrgPublic, load_key_file
try:
    with open(sys.argv[1], "rb") as f:
        key = load_key_file(f.read(8192))
except (OSError, TiplineError) as exc:
    sys.exit(f"install: {sys.argv[1]}: {exc}")
if not isinstance(key, OrgPublic):
    sys.exit(f"install: {sys.argv[1]} is not an org public key file (tipline-org-public)")
print(b64e(key.public_key))
EOF
)"
fi
if [ ! -f "$ROOT$CONFIG" ]; then
    [ -n "$org_b64" ] || die "the first run needs --org-key (the org public key file made on the desk)"
    if [ "$DATABASE" = postgresql ]; then
        # Peer authentication through PostgreSQL's Unix socket: no password to keep. The
        # port names the socket file: Debian gives a cluster the first free one from 5432.
        db_url="postgresql+psycopg:///tipline?host=/var/run/postgresql"
        if [ -z "$ROOT" ]; then
            pg_port="$(pg_port)"
            [ "$pg_port" = 5432 ] || db_url="$db_url&port=$pg_port"
        fi
    else
        db_url="sqlite:///$STATE/tipline.db"
    fi
    secret="$("$PY" -c 'import secrets; print(secrets.token_urlsafe(48))')"
    (
        umask 077
        cat >"$TMP/tipline.toml" <<EOF
# Tipline server configuration, made by deploy/install.sh. Every setting and its default:
# tipline/server/config.py; what they mean: docs/DEPLOY.md. Keep this file 0600: it holds the
# session key. After a change: systemctl restart tipline (and re-run install.sh if you change
# a size limit, so nginx's limits follow).
DATA_DIR = "$STATE"
ORG_PUBLIC_KEY = "$org_b64"
DATABASE_URL = "$db_url"
SECRET_KEY = "$secret"
# Where the app counts its limits, shared by every worker: tipline-redis.service.
LIMITS_STORAGE = "redis+unix:///run/tipline-redis/redis.sock"
EOF
    )
    put "$TMP/tipline.toml" "$CONFIG" 0600 "$USER_NAME:$USER_NAME"
else
    if [ "$(stat -c %a "$ROOT$CONFIG")" != 600 ]; then
        chmod 600 "$ROOT$CONFIG"
        changed "set the mode of $CONFIG to 600"
    fi
    own "$CONFIG" "$USER_NAME:$USER_NAME"
    if [ -n "$org_b64" ] && ! grep -qxF "ORG_PUBLIC_KEY = \"$org_b64\"" "$ROOT$CONFIG"; then
        die "$CONFIG names another org key; changing it is not an upgrade (see docs/DEPLOY.md)"
    fi
    # An older install counted limits in each worker's memory: point it at the shared store.
    if ! grep -q '^LIMITS_STORAGE *=' "$ROOT$CONFIG"; then
        printf '%s\n' "# Where the app counts its limits, shared by every worker: tipline-redis.service." \
            'LIMITS_STORAGE = "redis+unix:///run/tipline-redis/redis.sock"' >>"$ROOT$CONFIG"
        changed "added LIMITS_STORAGE to $CONFIG"
    fi
fi
export TIPLINE_CONFIG_FILE="$ROOT$CONFIG"

# --- 6. the database ----------------------------------------------------------------------
if [ "$DATABASE" = postgresql ] && [ -z "$ROOT" ]; then
    psql_q() { runuser -u postgres -- psql -XtAq -c "$1"; }
    if [ "$(psql_q "SELECT 1 FROM pg_roles WHERE rolname = '$USER_NAME'")" != 1 ]; then
        runuser -u postgres -- createuser "$USER_NAME"
        changed "made the PostgreSQL role $USER_NAME"
    fi
    if [ "$(psql_q "SELECT 1 FROM pg_database WHERE datname = 'tipline'")" != 1 ]; then
        runuser -u postgres -- createdb -O "$USER_NAME" tipline
        changed "made the PostgreSQL database tipline"
    fi
fi
folder "$STATE" 0700 "$USER_NAME:$USER_NAME"
as_tipline=(runuser -u "$USER_NAME" -- env "TIPLINE_CONFIG_FILE=$CONFIG" "$VENV/bin/tipline-server")
run "${as_tipline[@]}" db upgrade
if [ -n "$MANIFEST" ]; then
    want="$(sha256sum <"$MANIFEST" | cut -c1-64)"
    if [ "$(cat "$ROOT$ETC/manifest.sha256" 2>/dev/null || true)" != "$want" ]; then
        cp "$MANIFEST" "$PUBLIC/manifest.json"
        chmod 644 "$PUBLIC/manifest.json"
        run "${as_tipline[@]}" install-manifest --yes "$PUBLIC/manifest.json"
        echo "$want" >"$ROOT$ETC/manifest.sha256"
        changed "installed the key manifest $MANIFEST"
    fi
fi

# --- 7. nginx -------------------------------------------------------------------------------
"$PY" "$ROOT$APP/deploy/render.py" nginx "$ROOT$APP/deploy/nginx/tipline.conf" >"$TMP/site.conf"
before=$CHANGES
put "$ROOT$APP/deploy/nginx/tipline-common.conf" /etc/nginx/snippets/tipline-common.conf 0644 root:root
put "$TMP/site.conf" /etc/nginx/sites-available/tipline.conf 0644 root:root
if [ "$(readlink "$ROOT/etc/nginx/sites-enabled/tipline.conf" 2>/dev/null || true)" != /etc/nginx/sites-available/tipline.conf ]; then
    mkdir -p "$ROOT/etc/nginx/sites-enabled"
    ln -sfn /etc/nginx/sites-available/tipline.conf "$ROOT/etc/nginx/sites-enabled/tipline.conf"
    changed "enabled the nginx site"
fi
if [ -e "$ROOT/etc/nginx/sites-enabled/default" ] || [ -L "$ROOT/etc/nginx/sites-enabled/default" ]; then
    rm -f "$ROOT/etc/nginx/sites-enabled/default"
    changed "disabled nginx's default site (it listens on every address)"
fi
if [ "$CHANGES" -ne "$before" ]; then
    run nginx -t -q
    service reload-or-restart nginx
fi

# --- 8. Tor ---------------------------------------------------------------------------------
before=$CHANGES
torrc="$ROOT$APP/deploy/tor/torrc"
if [ -n "$OB_MASTER" ]; then
    # A backend of the Onionbalance frontend: the source onion accepts introductions made for
    # the frontend's address, named in its folder's ob_config (docs/DEPLOY.md).
    render_args=("$torrc" "$OB_MASTER")
    [ "$JOURNALIST" -eq 1 ] || render_args+=(--no-journalist)
    "$PY" "$ROOT$APP/deploy/render.py" torrc "${render_args[@]}" >"$TMP/torrc"
    torrc="$TMP/torrc"
    "$PY" "$ROOT$APP/deploy/render.py" ob-config "$OB_MASTER" >"$TMP/ob_config"
    # Made here only if Tor has not made it yet (Tor checks its mode at start; Debian's
    # /var/lib/tor is setgid, so the folder may carry that bit, which Tor accepts).
    if [ ! -d "$ROOT/var/lib/tor/tipline-source" ]; then
        mkdir -p "$ROOT/var/lib/tor"
        mkdir -m 0700 "$ROOT/var/lib/tor/tipline-source"
        own /var/lib/tor/tipline-source debian-tor:debian-tor
        changed "made /var/lib/tor/tipline-source"
    fi
    put "$TMP/ob_config" /var/lib/tor/tipline-source/ob_config 0600 debian-tor:debian-tor
fi
keep_debian_torrc "$torrc"
put "$torrc" /etc/tor/torrc 0644 root:root
if [ "$CHANGES" -ne "$before" ]; then
    run tor --verify-config -f /etc/tor/torrc --defaults-torrc /usr/share/tor/tor-service-defaults-torrc
    service restart tor
fi

# --- 9. systemd -----------------------------------------------------------------------------
# The limits store: readable by its own group (the app's) only, since it runs as that group.
before=$CHANGES
put "$ROOT$APP/deploy/redis/tipline-redis.conf" "$ETC/redis.conf" 0640 "root:$USER_NAME"
# Debian's own Redis instance listens on 127.0.0.1:6379: nothing here uses it.
if [ -n "$ROOT" ]; then
    say "would run: systemctl disable --now redis-server.service"
elif command -v systemctl >/dev/null && systemctl is-enabled --quiet redis-server.service 2>/dev/null; then
    if [ "$SYSTEMD" -eq 1 ]; then
        systemctl disable --now --quiet redis-server.service
    else
        systemctl disable --quiet redis-server.service
    fi
    changed "disabled Debian's redis-server.service (a TCP port nothing here needs)"
fi
for unit in tipline-redis.service tipline.socket tipline.service tipline-retention.service \
    tipline-retention.timer tipline-digest.service tipline-digest.timer; do
    put "$ROOT$APP/deploy/systemd/$unit" "/etc/systemd/system/$unit" 0644 root:root
done
if [ "$CHANGES" -ne "$before" ]; then
    service daemon-reload
    service try-restart tipline-redis.service
    service restart tipline.socket
    service try-restart tipline.service
fi
for unit in tipline-redis.service tipline.socket tipline.service tipline-retention.timer \
    tipline-digest.timer nginx tor; do
    if [ -n "$ROOT" ]; then
        say "would run: systemctl enable --now $unit"
    elif [ "$SYSTEMD" -eq 0 ]; then
        # Enabling needs only systemctl (it makes symlinks); starting needs systemd running.
        if command -v systemctl >/dev/null && ! systemctl is-enabled --quiet "$unit"; then
            systemctl enable --quiet "$unit"
            changed "enabled $unit"
        fi
        SKIPPED+=("systemctl enable --now $unit")
    elif ! systemctl is-enabled --quiet "$unit" || ! systemctl is-active --quiet "$unit"; then
        systemctl enable --now --quiet "$unit"
        changed "enabled and started $unit"
    fi
done
# The app reads its code at start: after an upgrade of the code, restart it (uploads in
# progress get gunicorn's graceful_timeout to finish).
if [ -z "$ROOT" ] && [ "${synced:-0}" -ne 0 ]; then
    service restart tipline.service
fi

# --- 10. what the admin needs next ----------------------------------------------------------
onion() {
    local file="$ROOT/var/lib/tor/$1/hostname" i
    for i in $(seq 1 60); do
        [ -f "$file" ] && { cat "$file"; return 0; }
        { [ -n "$ROOT" ] || [ "$SYSTEMD" -eq 0 ]; } && break
        [ "$i" -lt 60 ] && sleep 1
    done
    echo "(not made yet: see journalctl -u tor@default)"
}
render_master() { sed -n 's/^MasterOnionAddress //p' "$ROOT/var/lib/tor/tipline-source/ob_config"; }
fingerprint="$("$PY" - "$ROOT$CONFIG" <<'EOF'
import sys, tomllib
from tipline.crypto.encoding import b64d
from tipline.crypto.keys import fingerprint
with open(sys.argv[1], "rb") as f:
    key = tomllib.load(f)["ORG_PUBLIC_KEY"]
print(fingerprint(b64d(key, 32, ValueError, "ORG_PUBLIC_KEY")))
EOF
)"
if [ -n "$OB_MASTER" ]; then
    cat <<EOF

Source onion (publish it; served through Onionbalance): http://$(render_master)/
This app server's own source onion (give it to the frontend's --backend, never publish it):
                                $(onion tipline-source)
EOF
else
    cat <<EOF

Source onion (publish it):      http://$(onion tipline-source)/
EOF
fi
if [ "$JOURNALIST" -eq 1 ]; then
    cat <<EOF
Journalist onion (never publish; needs a client key, deploy/onion_auth.py add NAME):
                                http://$(onion tipline-journalist)/
EOF
else
    echo "Journalist onion:               not on this app server (--no-journalist-onion)"
fi
cat <<EOF
Org key fingerprint to publish (website, print, social media):
                                $fingerprint
Next, once: the first admin account (prints its passphrase), then journalists' onion keys:
  runuser -u $USER_NAME -- env TIPLINE_CONFIG_FILE=$CONFIG $VENV/bin/tipline-server create-admin NAME
  $VENV/bin/python $APP/deploy/onion_auth.py add NAME && systemctl reload tor
EOF
if [ ${#SKIPPED[@]} -gt 0 ]; then
    say "systemd is not running here (a chroot or a container?), so nothing was started or"
    say "reloaded. Skipped, to run once systemd runs:"
    printf 'install:   %s\n' "${SKIPPED[@]}"
fi
say "$CHANGES changes"
