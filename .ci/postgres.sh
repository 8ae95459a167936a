#!/usr/bin/env bash
# A throw-away PostgreSQL server for one test run: a cluster in a temp folder, trust
# authentication, loopback only. The server refuses to run as root, so under root it runs as
# the postgres user of Debian's package. Prints the server's URL; `.ci/postgres.sh stop DIR`
# stops it and removes the folder.
set -euo pipefail
run_as() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$1"; else sh -c "$1"; fi; }
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$pgbin" ] || { echo "postgresql is not installed" >&2; exit 1; }
if [ "${1:-}" = stop ]; then
  run_as "$pgbin/pg_ctl -D $2/data -m immediate stop" >/dev/null 2>&1 || true
  rm -rf "$2"
  exit 0
fi
dir=$(mktemp -d /tmp/b2p-pg.XXXXXX)
chmod 755 "$dir"
[ "$(id -u)" = 0 ] && chown postgres "$dir"
port=${B2P_PG_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
run_as "$pgbin/initdb -D $dir/data -A trust -U b2p >/dev/null"
run_as "$pgbin/pg_ctl -D $dir/data -l $dir/server.log -w -o '-k $dir -p $port -c listen_addresses=127.0.0.1 -c fsync=off' start" >/dev/null
echo "$dir postgresql://b2p@127.0.0.1:$port/postgres"
