#!/usr/bin/env bash
# Runs deploy/install.sh for real on a fresh Debian 12 root, and checks what it made:
#
#   sudo deploy/test-in-chroot.sh [--database sqlite|postgresql|both] [--keep]
#
# For each database: debootstrap a minimal bookworm into /tmp/tipline-chroot.*/, copy this
# source tree in, run the installer inside (real apt, adduser, venv + pip from PyPI with
# constraints.txt, configuration, PostgreSQL role and database, migrations, install-manifest,
# nginx, Tor and the units), start the app exactly as tipline.service's ExecStart would (same
# user, environment, working directory and umask, on the socket tipline.socket names) with
# nginx in front, submit a tip through nginx from the host and open what was stored with the
# journalist's key, then run the installer again and check that it changed nothing.
#
# No systemd runs in a chroot: the installer says what it skipped. A policy-rc.d keeps apt from
# starting nginx and Tor in the chroot (they would listen on the host's network), but lets
# PostgreSQL start, on the first free port (5432 is the host's, so usually 5433). Slow (about
# 5 minutes): not part of `make test`. Needs root, debootstrap, systemd-socket-activate (the
# host's systemd), network to the Debian mirror and PyPI, and `make setup` and `make static`
# in this tree. Everything runs in a private mount namespace and is unmounted and removed at
# the end (--keep leaves the files, never the mounts or processes). See docs/DEPLOY.md.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MIRROR="${TIPLINE_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
HOST_PY="$REPO/.venv/bin/python"
ARGS=("$@")
DATABASES=(sqlite postgresql)
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
        --database)
            case "${2:-}" in
                sqlite | postgresql) DATABASES=("$2") ;;
                both) ;;
                *) echo "usage: --database sqlite|postgresql|both" >&2; exit 2 ;;
            esac
            shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "usage: test-in-chroot.sh [--database sqlite|postgresql|both] [--keep]" >&2; exit 2 ;;
    esac
done

say() { echo "chroot-test: $*"; }
ok() { echo "chroot-test: ok: $*"; }
fail() { echo "chroot-test: FAILED: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "run as root (debootstrap, chroot and mounts need it)"
for tool in debootstrap unshare chroot systemd-socket-activate findmnt ip; do
    command -v "$tool" >/dev/null || fail "$tool is missing (apt-get install debootstrap systemd util-linux)"
done
[ -x "$HOST_PY" ] || fail "$HOST_PY is missing: run 'make setup' first"
[ -f "$REPO/static/build/libsodium.js" ] || fail "static/build is missing: run 'make static' first"

# Mounts made from here on live in a private mount namespace: they vanish with this script
# even if it is killed, and are never seen by the host.
if [ -z "${TIPLINE_CHROOT_NAMESPACE:-}" ]; then
    exec unshare --mount --propagation private env TIPLINE_CHROOT_NAMESPACE=1 "$0" "${ARGS[@]}"
fi

WORK="$(mktemp -d /tmp/tipline-chroot.XXXXXX)"
CHROOT=""
started=$SECONDS

# Every process whose root is the chroot was started by this script (apt's PostgreSQL, the
# app, nginx): end them by id, then unmount.
stop_chroot() {
    local c="$1" p pids=() i
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null || true)" = "$c" ] && pids+=("${p#/proc/}")
    done
    if [ ${#pids[@]} -gt 0 ]; then
        kill "${pids[@]}" 2>/dev/null || true
        for i in $(seq 1 50); do
            kill -0 "${pids[@]}" 2>/dev/null || break
            if [ "$i" -eq 50 ]; then kill -9 "${pids[@]}" 2>/dev/null || true; fi
            sleep 0.2
        done
    fi
    for m in dev/shm dev/pts dev sys proc; do
        if mountpoint -q "$c/$m"; then umount "$c/$m" || umount -l "$c/$m"; fi
    done
}

cleanup() {
    local rc=$?
    [ -n "$CHROOT" ] && stop_chroot "$CHROOT"
    if findmnt -rn -o TARGET | grep -q "^$WORK"; then
        echo "chroot-test: mounts left under $WORK, not removing it" >&2
        rc=1
    elif [ "$KEEP" -eq 1 ]; then
        say "kept $WORK"
    else
        rm -rf --one-file-system "$WORK"
    fi
    [ "$rc" -eq 0 ] && say "all checks passed in $((SECONDS - started)) s" ||
        echo "chroot-test: FAILED (exit $rc) after $((SECONDS - started)) s; logs in $WORK if kept (--keep)" >&2
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

in_chroot() {
    chroot "$CHROOT" /usr/bin/env -i LANG=C.UTF-8 HOME=/root TERM=dumb \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

# The unit's setting NAME (the last one wins, as in systemd).
unit_setting() { sed -n "s/^$2=//p" "$CHROOT/etc/systemd/system/$1" | tail -n 1; }

# What a second run must not change: every path's type, mode, owner and content.
snapshot() {
    (
        cd "$CHROOT"
        find etc opt/tipline var/lib/tipline -path opt/tipline/venv -prune -o \
            -printf '%y %m %u:%g %p %l\n' | sort
        find etc opt/tipline/src var/lib/tipline -type f -print0 | sort -z | xargs -0 sha256sum
        cat opt/tipline/venv/.tipline-installed
    )
}

say "debootstrap --variant=minbase bookworm from $MIRROR"
t=$SECONDS
debootstrap --variant=minbase bookworm "$WORK/base" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -n 20 "$WORK/debootstrap.log" >&2; fail "debootstrap"; }
ok "a fresh Debian 12 root in $((SECONDS - t)) s"

say "the desk's files (org key, journalist key, signed manifest)"
(cd "$REPO" && "$HOST_PY" -m tests.deploy.chroot_check keys "$WORK/desk")
fingerprint="$(cat "$WORK/desk/fingerprint")"

for db in "${DATABASES[@]}"; do
    CHROOT="$WORK/$db"
    say "--- $db: a copy of the fresh root at $CHROOT"
    cp -a "$WORK/base" "$CHROOT"
    cat >"$CHROOT/usr/sbin/policy-rc.d" <<'EOF'
#!/bin/sh
# test-in-chroot.sh: apt may start PostgreSQL only; nginx and Tor would listen on the host.
[ "$1" = postgresql ] && exit 0
exit 101
EOF
    chmod 755 "$CHROOT/usr/sbin/policy-rc.d"
    cp /etc/resolv.conf "$CHROOT/etc/resolv.conf"
    # The host's own way to the network: local CAs (a TLS-inspecting proxy's) and pip.conf.
    # Debian's ca-certificates, installed with python3, adds the CAs to the system bundle.
    if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
        mkdir -p "$CHROOT/usr/local/share/ca-certificates"
        cp /usr/local/share/ca-certificates/*.crt "$CHROOT/usr/local/share/ca-certificates/"
    fi
    [ ! -f /etc/pip.conf ] || cp /etc/pip.conf "$CHROOT/etc/pip.conf"
    mount -t proc proc "$CHROOT/proc"
    mount -t sysfs sysfs "$CHROOT/sys"
    mount --bind /dev "$CHROOT/dev"
    mount --bind /dev/pts "$CHROOT/dev/pts"
    mount -t tmpfs -o mode=1777 tmpfs "$CHROOT/dev/shm"
    mkdir -p "$CHROOT/root/desk"
    cp "$WORK/desk/org.pub.json" "$WORK/desk/manifest.signed.json" "$CHROOT/root/desk/"
    rsync -a --exclude=/.git --exclude=/.venv/ --exclude=/node_modules/ --exclude=__pycache__/ \
        --exclude=/.mypy_cache/ --exclude=/.ruff_cache/ --exclude=/.pytest_cache/ \
        --exclude=/.hypothesis/ "$REPO/" "$CHROOT/root/tipline/"

    say "$db: first run of deploy/install.sh inside the chroot"
    t=$SECONDS
    install=(bash /root/tipline/deploy/install.sh --org-key /root/desk/org.pub.json
        --manifest /root/desk/manifest.signed.json --database "$db")
    in_chroot "${install[@]}" >"$WORK/$db-install-1.log" 2>&1 ||
        { cat "$WORK/$db-install-1.log" >&2; fail "$db: the first install failed"; }
    sed 's/^/    | /' "$WORK/$db-install-1.log"
    ok "$db: the installer finished in $((SECONDS - t)) s"
    first="$(sed -n 's/^install: \([0-9]*\) changes$/\1/p' "$WORK/$db-install-1.log")"
    [ "${first:-0}" -gt 10 ] || fail "$db: the first run reported '${first:-no}' changes"
    ok "$db: it reported $first changes"
    grep -q "systemd is not running" "$WORK/$db-install-1.log" ||
        fail "$db: the installer did not say that it skipped systemd"
    ok "$db: it said what it skipped without systemd"
    grep -qF "$fingerprint" "$WORK/$db-install-1.log" || fail "$db: the org fingerprint is not printed"
    ok "$db: it printed the org key's fingerprint"
    for want in "/etc/tipline/tipline.toml 600 tipline:tipline" \
        "/etc/tipline 750 root:tipline" "/var/lib/tipline 700 tipline:tipline"; do
        read -r path mode owner <<<"$want"
        seen="$(in_chroot stat -c '%a %U:%G' "$path")"
        [ "$seen" = "$mode $owner" ] || fail "$db: $path is $seen, not $mode $owner"
    done
    ok "$db: the configuration is 0600 and the state folder 0700, both the service user's"
    grep -q "^DATABASE_URL = \"$( [ "$db" = sqlite ] && echo sqlite || echo postgresql)" \
        "$CHROOT/etc/tipline/tipline.toml" || fail "$db: DATABASE_URL is not for $db"
    in_chroot nginx -t -q || fail "$db: nginx -t refuses the installed configuration"
    ok "$db: nginx -t accepts the installed site"
    for unit in tipline-redis.service tipline.socket tipline.service tipline-retention.service \
        tipline-retention.timer tipline-digest.service tipline-digest.timer; do
        cmp -s "$REPO/deploy/systemd/$unit" "$CHROOT/etc/systemd/system/$unit" ||
            fail "$db: /etc/systemd/system/$unit is not the shipped one"
    done
    ok "$db: the seven units are installed"
    grep -qx 'LIMITS_STORAGE = "redis+unix:///run/tipline-redis/redis.sock"' \
        "$CHROOT/etc/tipline/tipline.toml" || fail "$db: LIMITS_STORAGE is not the installed Redis"
    # The digest timer's command, as its service runs it: off until the admin configures it.
    read -ra digest_cmd <<<"$(unit_setting tipline-digest.service ExecStart)"
    digest_out="$(in_chroot runuser -u tipline -- env "$(unit_setting tipline-digest.service Environment)" \
        "${digest_cmd[@]}" 2>&1)" || fail "$db: tipline-server digest: $digest_out"
    [ "$digest_out" = "tipline-server: the daily digest is off (DIGEST_ENABLED); nothing was sent" ] ||
        fail "$db: tipline-server digest said: $digest_out"
    for tool in age gpg; do
        in_chroot "$tool" --version >/dev/null || fail "$db: $tool is not installed (the digest needs it)"
    done
    ok "$db: tipline-server digest runs as the timer would (off by default); age and gpg are there"

    say "$db: the limits store, started as tipline-redis.service's ExecStart"
    redis_dir="/run/$(unit_setting tipline-redis.service RuntimeDirectory)"
    redis_user="$(unit_setting tipline-redis.service User)"
    redis_group="$(unit_setting tipline-redis.service Group)"
    mkdir -m "$(unit_setting tipline-redis.service RuntimeDirectoryMode)" "$CHROOT$redis_dir"
    in_chroot chown "$redis_user:$redis_group" "$redis_dir"
    read -ra redis_cmd <<<"$(unit_setting tipline-redis.service ExecStart)"
    # shellcheck disable=SC2016  # $0 and $@ are the inner sh's
    chroot "$CHROOT" setpriv --reuid "$redis_user" --regid "$redis_group" --init-groups \
        --inh-caps=-all sh -c 'umask "$0" && exec "$@"' \
        "$(unit_setting tipline-redis.service UMask)" "${redis_cmd[@]}" >"$WORK/$db-redis.log" 2>&1 &
    for _ in $(seq 1 100); do [ -S "$CHROOT$redis_dir/redis.sock" ] && break; sleep 0.1; done
    pong="$(in_chroot runuser -u tipline -- redis-cli -s "$redis_dir/redis.sock" ping 2>&1)" ||
        { cat "$WORK/$db-redis.log" >&2; fail "$db: the app's user cannot reach the limits store: $pong"; }
    [ "$pong" = PONG ] || fail "$db: the limits store answered $pong"
    [ "$(in_chroot runuser -u tipline -- redis-cli -s "$redis_dir/redis.sock" config get port | tail -n 1)" = 0 ] ||
        fail "$db: the limits store listens on a TCP port"
    ok "$db: the limits store runs as $redis_user, answers the app's user on $redis_dir/redis.sock, no TCP port"

    say "$db: the app, started as tipline.service's ExecStart on tipline.socket's socket"
    listen="$(unit_setting tipline.socket ListenStream)"
    mkdir -m "$(unit_setting tipline.socket DirectoryMode)" "$CHROOT$(dirname "$listen")"
    workdir="$(unit_setting tipline.service WorkingDirectory)"
    execstart="$(unit_setting tipline.service ExecStart)"
    # Every Environment= line of the unit (the configuration file, the malloc arenas).
    env_args=()
    while IFS= read -r setting; do env_args+=(-E "$setting"); done \
        < <(sed -n 's/^Environment=//p' "$CHROOT/etc/systemd/system/tipline.service")
    user="$(unit_setting tipline.service User)"
    group="$(unit_setting tipline.service Group)"
    umask_="$(unit_setting tipline.service UMask)"
    # systemd-socket-activate listens (as tipline.socket would) and execs, without forking,
    # chroot, setpriv and sh, so the app is the process LISTEN_PID names.
    # shellcheck disable=SC2016  # $0.. are expanded by the inner sh
    systemd-socket-activate -l "$CHROOT$listen" "${env_args[@]}" -E LANG=C.UTF-8 \
        -E PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        chroot "$CHROOT" setpriv --reuid "$user" --regid "$group" --init-groups --inh-caps=-all \
        sh -c 'cd "$0" && umask "$1" && exec $2' "$workdir" "$umask_" "$execstart" \
        >"$WORK/$db-app.log" 2>&1 &
    app_pid=$!
    for _ in $(seq 1 100); do [ -S "$CHROOT$listen" ] && break; sleep 0.1; done
    [ -S "$CHROOT$listen" ] || { cat "$WORK/$db-app.log" >&2; fail "$db: no socket at $listen"; }
    chgrp "$(in_chroot getent group "$(unit_setting tipline.socket SocketGroup)" | cut -d: -f3)" \
        "$CHROOT$listen"
    chmod "$(unit_setting tipline.socket SocketMode)" "$CHROOT$listen"
    # nginx listens on 127.0.0.1:8080 and :8081 as installed; in a network namespace of its
    # own (with the checker) those ports cannot clash with the host's. The app's Unix socket
    # reaches across.
    export CHROOT REPO HOST_PY WORK db
    export -f in_chroot
    # shellcheck disable=SC2016  # expanded by the inner bash
    unshare --net bash -c '
        set -e
        ip link set lo up
        in_chroot nginx || { echo "chroot-test: FAILED: $db: nginx did not start" >&2; exit 1; }
        echo "chroot-test: $db: nginx started in the chroot with the installed configuration"
        rc=0
        (cd "$REPO" && "$HOST_PY" -m tests.deploy.chroot_check submit "$WORK/desk" "$CHROOT" \
            "a tip through the installed $db server") || rc=$?
        in_chroot nginx -s quit
        exit "$rc"' || { cat "$WORK/$db-app.log" >&2; fail "$db: the submission"; }
    kill "$app_pid"
    wait "$app_pid" || true
    # A stopped app closes its database (gunicorn.conf.py's worker_exit, then on_exit in the
    # master): no SQLite journal left.
    if [ "$db" = sqlite ]; then
        leftover="$(find "$CHROOT/var/lib/tipline" -maxdepth 1 -name '*.db-wal' -o -maxdepth 1 -name '*.db-shm')"
        [ -z "$leftover" ] || fail "$db: the stopped app left ${leftover//$CHROOT/}"
    fi
    grep -q "Traceback" "$WORK/$db-app.log" && { cat "$WORK/$db-app.log" >&2; fail "$db: the app logged a traceback"; }
    [ "$(in_chroot stat -c %U /var/lib/tipline/blobs)" = tipline ] || fail "$db: blobs are not tipline's"
    ok "$db: the app ran as $user in $workdir with umask $umask_ and logged no traceback"

    say "$db: second run of deploy/install.sh, with the same options"
    before="$(snapshot)"
    in_chroot "${install[@]}" >"$WORK/$db-install-2.log" 2>&1 ||
        { cat "$WORK/$db-install-2.log" >&2; fail "$db: the second install failed"; }
    sed 's/^/    | /' "$WORK/$db-install-2.log"
    grep -qx "install: 0 changes" "$WORK/$db-install-2.log" || fail "$db: the second run changed something"
    after="$(snapshot)"
    [ "$before" = "$after" ] || { diff <(echo "$before") <(echo "$after") >&2; fail "$db: files changed"; }
    ok "$db: the second run said '0 changes' and no file under /etc, /opt/tipline or /var/lib/tipline changed"

    stop_chroot "$CHROOT"
    CHROOT=""
    [ "$KEEP" -eq 1 ] || rm -rf --one-file-system "${WORK:?}/$db"
done
