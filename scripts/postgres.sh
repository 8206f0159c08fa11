#!/usr/bin/env bash
# Start a local PostgreSQL server for Dagster's instance storage (runs, event logs, schedules):
# the storage that a deployment beyond one machine shares between the webserver, the daemon and
# the run workers (deploy/dagster-postgres.yaml). .ci/run starts it for tests/pipelines/test_dagster_postgres.py.
#
#   DAGSTER_PG_PASSWORD=... scripts/postgres.sh      # safe to run again; prints nothing on success
#
# Listens on 127.0.0.1:${DAGSTER_PG_PORT:-5433} only; TCP logins need the password (scram-sha-256),
# the Unix socket lives inside the 0700 data folder. The password comes from the environment and
# is (re)applied on every start, so it is never written to a file of this repository.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${DAGSTER_PG_PASSWORD:?set DAGSTER_PG_PASSWORD, the password of the dagster role}"
PORT="${DAGSTER_PG_PORT:-5433}"
USER_NAME="${DAGSTER_PG_USER:-dagster}"
DB_NAME="${DAGSTER_PG_DB:-dagster}"
DATA="${SLA_PG_DATA:-/tmp/sla-dagster-postgres}"

bin_dir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
if [ -z "$(bin_dir)" ]; then
  echo "postgres: installing Debian's postgresql package" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
fi
BIN="$(bin_dir)"

# PostgreSQL refuses to run as root: run it as Debian's postgres user then.
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

if [ ! -s "$DATA/PG_VERSION" ]; then
  mkdir -p "$DATA"
  [ "$(id -u)" -ne 0 ] || chown postgres: "$DATA"
  chmod 700 "$DATA"
  as_pg "$BIN/initdb" -D "$DATA" -U "$USER_NAME" --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 >/dev/null
fi
if ! as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
  as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories=$DATA" >/dev/null
fi
psql_local() { as_pg "$BIN/psql" -h "$DATA" -p "$PORT" -U "$USER_NAME" -d postgres -v ON_ERROR_STOP=1 -qAt "$@"; }
# the password travels on stdin, not on a command line that `ps` shows
printf "ALTER ROLE \"%s\" PASSWORD '%s';\n" "$USER_NAME" "${DAGSTER_PG_PASSWORD//\'/\'\'}" | psql_local -f - >/dev/null
if [ "$(psql_local -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != "1" ]; then
  psql_local -c "CREATE DATABASE \"$DB_NAME\" OWNER \"$USER_NAME\"" >/dev/null
fi
