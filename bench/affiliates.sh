#!/usr/bin/env bash
# Issue 3 benchmark: GET /v1/affiliates (per_page=100) from a workspace of
# 100,000 affiliates, first page and a page deep in the list, with the default
# sort, another sort, a status filter and searches; then an idempotent POST
# /v1/affiliates (a new Idempotency-Key each). Against the real binary on SQLite
# and PostgreSQL, one after the other in one run, with bench/affiliates as the
# seeder and the client.
#
#   bash bench/affiliates.sh
#
# Needs go and curl; the PostgreSQL case also needs psql and a server reachable
# as $BENCH_PG_ADMIN (it is skipped if it is not). The load average is printed
# before and after: the machine may be shared. A bare net/http handler
# (bench/bare) is measured before each engine at the list concurrency, as a
# reference for what the machine allowed at that moment.
#
# Environment (all optional):
#   BENCH_AFFILIATES   affiliates to seed (100000)
#   BENCH_CONC         concurrent clients for the list cases (4)
#   BENCH_DURATION     measured duration per list case (10s)
#   BENCH_POST_CONC    concurrent clients for POST /v1/affiliates (50)
#   BENCH_POST_DURATION measured duration of the POST case (15s)
#   BENCH_WARMUP       unmeasured load before each measurement (2s)
#   BENCH_PG_ADMIN     admin URL for creating the database (postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)
#   BENCH_PG_DB        database to (re)create for the run (heldsway_bench3)
#   BENCH_PORT         ports are taken from here upwards, skipping busy ones (28380)
#   BENCH_ONLY         list or post: measure only those cases
#   BENCH_PROFILE      if set, a directory: each server writes a CPU profile of
#                      its run there (heldsway serve --cpuprofile)
set -euo pipefail

cd "$(dirname "$0")/.."
AFFILIATES=${BENCH_AFFILIATES:-100000}
CONC=${BENCH_CONC:-4}
DUR=${BENCH_DURATION:-10s}
POST_CONC=${BENCH_POST_CONC:-50}
POST_DUR=${BENCH_POST_DURATION:-15s}
WARMUP=${BENCH_WARMUP:-2s}
PG_ADMIN=${BENCH_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
PG_DB=${BENCH_PG_DB:-heldsway_bench3}
PORT=${BENCH_PORT:-28380}
PROFILE=${BENCH_PROFILE:-}
ONLY=${BENCH_ONLY:-}

for tool in go curl; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 1; }
done

WORK=$(mktemp -d)
PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$WORK"
}
trap cleanup EXIT

echo "# building" >&2
go build -o "$WORK/heldsway" ./cmd/heldsway
go build -o "$WORK/affiliates" ./bench/affiliates
go build -o "$WORK/bare" ./bench/bare

wait_up() { # url
	for _ in $(seq 1 600); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "bench: $1 did not come up" >&2
	exit 1
}

next_port() { # sets $PORT to the next free port from $PORT up
	while (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do
		PORT=$((PORT + 1))
	done
}

LOAD_BEFORE=$(uptime)

next_port; BARE_PORT=$PORT; PORT=$((PORT + 1))
"$WORK/bare" --addr "127.0.0.1:$BARE_PORT" &
BARE_PID=$!
PIDS+=($BARE_PID)
wait_up "http://127.0.0.1:$BARE_PORT/"

TARGETS=()
# start NAME DB: starts a server with the access log off, seeds its bootstrap
# workspace and adds an affiliates key whose per-minute budget does not cap
# the run.
start() {
	local name=$1 db=$2
	next_port
	local port=$PORT
	PORT=$((PORT + 1))
	local extra=()
	if [ -n "$PROFILE" ]; then
		mkdir -p "$PROFILE"
		extra=(--cpuprofile "$PROFILE/affiliates-$name.cpu.pprof")
	fi
	HELDSWAY_ACCESS_LOG=0 "$WORK/heldsway" serve --addr "127.0.0.1:$port" --db "$db" "${extra[@]}" \
		>"$WORK/$name.out" 2>"$WORK/$name.err" &
	local pid=$!
	PIDS+=($pid)
	wait_up "http://127.0.0.1:$port/healthz"
	echo "# seeding $AFFILIATES affiliates ($name)" >&2
	"$WORK/affiliates" seed --db "$db" --workspace 1 --affiliates "$AFFILIATES"
	"$WORK/heldsway" key create --db "$db" --workspace 1 --name bench --scopes affiliates:read,affiliates:write \
		--rate-limit 1000000 --json >"$WORK/$name.key"
	TARGETS+=(--target "$name=http://127.0.0.1:$port=$WORK/$name.key=$db=$pid")
}

start sqlite "$WORK/bench.db"
if command -v psql >/dev/null && psql "$PG_ADMIN" -qAtc 'SELECT 1' >/dev/null 2>&1; then
	psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $PG_DB" -c "CREATE DATABASE $PG_DB" >/dev/null
	start postgres "${PG_ADMIN%%/postgres\?*}/$PG_DB?sslmode=disable"
else
	echo "bench: PostgreSQL not reachable at $PG_ADMIN; skipping its case" >&2
fi

echo "# measuring" >&2
status=0
"$WORK/affiliates" measure "${TARGETS[@]}" --bare "http://127.0.0.1:$BARE_PORT/" --affiliates "$AFFILIATES" \
	-c "$CONC" -d "$DUR" -post-c "$POST_CONC" -post-d "$POST_DUR" -warmup "$WARMUP" -only "$ONLY" || status=$?

# Stop the servers gracefully (SIGTERM) so CPU profiles, if asked for, are written.
for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
PIDS=()
echo
echo "loopback, one Go client; $(nproc) cores, $(go env GOVERSION)"
echo "load before: $LOAD_BEFORE"
echo "load after:  $(uptime)"
exit $status
