#!/usr/bin/env bash
# Runs a command with a PostgreSQL server answering at $TIPLINE_TEST_POSTGRES_URL.
#
#   tools/with-postgres.sh COMMAND [ARGS...]
#
# If a server already answers at the URL (default postgresql://postgres@127.0.0.1:5432/postgres)
# the command runs against it. Otherwise a throwaway cluster is made with Debian's postgresql
# binaries (initdb in a temporary folder, trust auth on 127.0.0.1 and a socket in that folder,
# a free port, fsync off), the URL is pointed at it for the command, and the cluster is stopped
# and removed when the command ends, whatever its outcome.
set -euo pipefail

URL="${TIPLINE_TEST_POSTGRES_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
if pg_isready -q -t 3 -d "$URL" 2>/dev/null; then
    export TIPLINE_TEST_POSTGRES_URL="$URL"
    exec "$@"
fi

bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
[ -x "$bindir/initdb" ] || {
    echo "with-postgres: nothing answers at $URL and Debian's postgresql is not installed" >&2
    exit 1
}
dir="$(mktemp -d /tmp/tipline-pg.XXXXXX)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
    # initdb refuses to run as root: the cluster belongs to Debian's postgres user.
    chown postgres: "$dir"
    as_owner=(runuser -u postgres --)
fi
stop() {
    "${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap stop EXIT
echo "with-postgres: nothing answers at $URL; starting a throwaway cluster on 127.0.0.1:$port" >&2
"${as_owner[@]}" "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 \
    --locale=C.UTF-8 >/dev/null
"${as_owner[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w -o \
    "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c max_connections=200" \
    start >/dev/null
export TIPLINE_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$port/postgres"
"$@"
