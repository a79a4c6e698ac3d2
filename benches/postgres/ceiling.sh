#!/usr/bin/env bash
# The physical ceiling of Orca's queue statements on this PostgreSQL: pgbench runs one
# execution's insert → claim → complete, one row per statement and in batches of 100, with
# synchronous_commit on and off. Prints executions per second for each.
#
#   benches/postgres/ceiling.sh [URL] [SECONDS] [CLIENTS]
#
# Uses its own schema (orca_pgbench, dropped afterwards); needs psql and pgbench.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
url=${1:-${ORCA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}}
secs=${2:-20}
clients=${3:-4}
schema=orca_pgbench

psql -q "$url" -v ON_ERROR_STOP=1 -v schema=$schema -f "$here/setup.sql" >/dev/null 2>&1
trap 'psql -q "$url" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1' EXIT

run() { # script rows-per-transaction synchronous_commit
  local tps
  tps=$(PGOPTIONS="-c search_path=$schema -c synchronous_commit=$3" \
    pgbench -n -M prepared -c "$clients" -j "$clients" -T "$secs" -f "$here/$1" "$url" 2>/dev/null \
    | awk '/^tps = / {print $3; exit}')
  psql -q "$url" -c "TRUNCATE $schema.executions CASCADE" >/dev/null 2>&1
  printf '%-13s synchronous_commit=%-3s %10.0f executions/s (%s tps, %s clients)\n' \
    "$1" "$3" "$(echo "$tps * $2" | bc -l)" "$tps" "$clients"
}

for sc in on off; do
  run single.sql 1 "$sc"
  run batch100.sql 100 "$sc"
done
