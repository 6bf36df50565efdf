#!/usr/bin/env bash
# Issue 6 benchmark: the analytics sections and reports over 90 days of a
# workspace with 5,000,000 clicks, 50,000 conversions, 500,000 storefront
# events and 2,000 affiliates spread over 180 days, on SQLite and PostgreSQL,
# next to the same stats figures computed by a direct scan of the raw rows.
#
#   bash bench/analytics.sh
#
# Needs go; the PostgreSQL case also needs psql and a server reachable as
# $BENCH_PG_ADMIN (it is skipped if it is not).
#
# Environment (all optional):
#   BENCH_CLICKS, BENCH_CONVERSIONS, BENCH_AFFILIATES, BENCH_EVENTS, BENCH_DAYS
#                      the seeded history (5000000, 50000, 2000, 500000, 180)
#   BENCH_RANGE_DAYS   days of the measured range (90)
#   BENCH_REQUESTS     requests per endpoint, one after another (200)
#   BENCH_PG_ADMIN     admin URL for creating the database (postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)
#   BENCH_PG_DB        database to (re)create for the run (heldsway_bench6)
#   BENCH_KEEP         a directory: keep the SQLite database there and reuse it
set -euo pipefail

cd "$(dirname "$0")/.."
PG_ADMIN=${BENCH_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
PG_DB=${BENCH_PG_DB:-heldsway_bench6}
SEED=(--clicks "${BENCH_CLICKS:-5000000}" --conversions "${BENCH_CONVERSIONS:-50000}"
	--affiliates "${BENCH_AFFILIATES:-2000}" --events "${BENCH_EVENTS:-500000}" --days "${BENCH_DAYS:-180}")
MEASURE=(--range-days "${BENCH_RANGE_DAYS:-90}" --requests "${BENCH_REQUESTS:-200}")

WORK=${BENCH_KEEP:-$(mktemp -d)}
[ -n "${BENCH_KEEP:-}" ] || trap 'rm -rf "$WORK"' EXIT
go build -o "$WORK/analytics" ./bench/analytics

echo "# $(uptime)"
if [ ! -f "$WORK/sqlite.ws" ]; then
	echo "# seeding SQLite" >&2
	"$WORK/analytics" seed --db "$WORK/sqlite.db" "${SEED[@]}" >"$WORK/sqlite.ws"
fi
"$WORK/analytics" measure --db "$WORK/sqlite.db" --workspace "$(cat "$WORK/sqlite.ws")" --label SQLite "${MEASURE[@]}"
echo

if psql "$PG_ADMIN" -qc 'SELECT 1' >/dev/null 2>&1; then
	PG_URL="${PG_ADMIN%/*}/$PG_DB?sslmode=disable"
	psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $PG_DB" -c "CREATE DATABASE $PG_DB" >/dev/null
	echo "# seeding PostgreSQL" >&2
	ws=$("$WORK/analytics" seed --db "$PG_URL" "${SEED[@]}")
	"$WORK/analytics" measure --db "$PG_URL" --workspace "$ws" --label PostgreSQL "${MEASURE[@]}"
else
	echo "# PostgreSQL not reachable at $PG_ADMIN: skipped" >&2
fi
echo "# $(uptime)"
