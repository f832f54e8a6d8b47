#!/usr/bin/env bash
# Starts the Debian PostgreSQL cluster on loopback for the coordination tests (tests/Cairn.Coordination.Tests)
# and makes sure role "cairn" (password "cairn") owns database "cairn_test". Idempotent: a running cluster and an
# existing role/database are left as they are. Prints the connection string the tests read from
# CAIRN_TEST_POSTGRES (the same as their default). Run as root, after scripts/install-deps.sh.
set -euo pipefail

user=cairn password=cairn database=cairn_test

command -v pg_lsclusters >/dev/null || { echo "start-postgres: PostgreSQL is not installed (bash scripts/install-deps.sh)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "start-postgres: run as root (it starts the cluster and runs psql as postgres)" >&2; exit 2; }

# The newest installed server version, and its "main" cluster (created if the package left none, e.g. in images
# built with create_main_cluster = false).
version=$(ls /usr/lib/postgresql | sort -V | tail -n1)
[ -n "$version" ] || { echo "start-postgres: no PostgreSQL server under /usr/lib/postgresql" >&2; exit 2; }
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$version main"; then
  pg_createcluster "$version" main >/dev/null
fi

port=$(pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $3}')
status=$(pg_lsclusters -h | awk -v v="$version" '$1==v && $2=="main" {print $4}')
if [ "$status" != online ]; then
  pg_ctlcluster "$version" main start
fi

for _ in $(seq 1 60); do
  pg_isready -q -h 127.0.0.1 -p "$port" && break
  sleep 0.5
done
pg_isready -q -h 127.0.0.1 -p "$port" || { echo "start-postgres: the cluster did not accept connections on 127.0.0.1:$port" >&2; exit 1; }

psql_admin() { runuser -u postgres -- psql -p "$port" -v ON_ERROR_STOP=1 -qtA "$@"; }

# The default pg_hba.conf allows password (scram-sha-256) logins on 127.0.0.1, which is what the tests use.
if [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$user'")" != 1 ]; then
  psql_admin -c "CREATE ROLE $user LOGIN PASSWORD '$password'"
fi
if [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$database'")" != 1 ]; then
  psql_admin -c "CREATE DATABASE $database OWNER $user"
fi

echo "Host=127.0.0.1;Port=$port;Username=$user;Password=$password;Database=$database"
