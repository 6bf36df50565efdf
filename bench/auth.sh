#!/usr/bin/env bash
# Issue 2 benchmark: token exchange and an authenticated GET /v1/me on SQLite and
# PostgreSQL, next to a bare net/http handler, all measured with wrk over
# loopback in one run so the ratios compare like with like.
#
#   bash bench/auth.sh
#
# Needs go, wrk, curl and jq; the PostgreSQL cases also need psql and a server
# reachable as $BENCH_PG_ADMIN (they are skipped if it is not).
#
# Environment (all optional):
#   BENCH_DURATION     seconds per measurement (15)
#   BENCH_THREADS      wrk threads (2)
#   BENCH_CONNECTIONS  wrk connections (50)
#   BENCH_WARMUP       seconds of unmeasured load before each case (3)
#   BENCH_PG_ADMIN     admin URL for creating the database (postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)
#   BENCH_PG_DB        database to (re)create for the run (heldsway_bench)
#   BENCH_PORT         ports are taken from here upwards, skipping busy ones (28080)
#   BENCH_PROFILE      if set, a directory: each HeldSway server writes a CPU
#                      profile of its run there (heldsway serve --cpuprofile)
set -euo pipefail

cd "$(dirname "$0")/.."
DUR=${BENCH_DURATION:-15}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNECTIONS:-50}
WARMUP=${BENCH_WARMUP:-3}
PG_ADMIN=${BENCH_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
PG_DB=${BENCH_PG_DB:-heldsway_bench}
PORT=${BENCH_PORT:-28080}
PROFILE=${BENCH_PROFILE:-}

for tool in go wrk curl jq; do
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
go build -o "$WORK/bare" ./bench/bare

wait_up() { # url
	for _ in $(seq 1 100); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "bench: $1 did not come up" >&2
	exit 1
}

# start_heldsway NAME DB PORT: starts a server with the access log off and the
# token endpoint's per-IP throttle lifted (production keeps the documented 120/min).
start_heldsway() {
	local name=$1 db=$2 port=$3
	local extra=()
	if [ -n "$PROFILE" ]; then
		mkdir -p "$PROFILE"
		extra=(--cpuprofile "$PROFILE/$name.cpu.pprof")
	fi
	HELDSWAY_ACCESS_LOG=0 HELDSWAY_TOKEN_IP_LIMIT=1000000000 \
		"$WORK/heldsway" serve --addr "127.0.0.1:$port" --db "$db" "${extra[@]}" \
		>"$WORK/$name.out" 2>"$WORK/$name.err" &
	PIDS+=($!)
	wait_up "http://127.0.0.1:$port/healthz"
	# A read-only key whose per-minute budget does not cap the benchmark.
	"$WORK/heldsway" key create --db "$db" --workspace 1 --name bench --scopes read-only \
		--rate-limit 1000000 --json >"$WORK/$name.key"
}

# wrk Lua scripts: the token exchange posts the key's credentials as JSON;
# /v1/me sends a bearer token obtained once beforehand.
lua_token() { # keyfile
	local key secret
	key=$(jq -r .api_key "$1")
	secret=$(jq -r .api_secret "$1")
	cat <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"api_key":"$key","api_secret":"$secret"}'
EOF
}

lua_me() { # port keyfile
	local token
	token=$(curl -fsS "http://127.0.0.1:$1/v1/auth/token" -H 'Content-Type: application/json' \
		-d "$(jq -c '{api_key, api_secret}' "$2")" | jq -r .data.access_token)
	[ -n "$token" ] && [ "$token" != null ] || { echo "bench: no token from :$1" >&2; exit 1; }
	cat <<EOF
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer $token"
EOF
}

RESULTS=()
# measure LABEL URL [LUA]: warms up, then runs wrk and records req/s and p99.
measure() {
	local label=$1 url=$2 lua=${3:-}
	local args=(-t"$THREADS" -c"$CONNS" --latency)
	[ -n "$lua" ] && args+=(-s "$lua")
	echo "# $label: $url" >&2
	if [ "$WARMUP" -gt 0 ]; then
		wrk "${args[@]}" -d"${WARMUP}s" "$url" >/dev/null
	fi
	local out
	out=$(wrk "${args[@]}" -d"${DUR}s" "$url")
	echo "$out" >&2
	local rps p99 errs
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
	errs=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' <<<"$out")
	if [ -n "$errs" ]; then
		echo "bench: $label had $errs non-2xx responses; the figures are not valid" >&2
		exit 1
	fi
	RESULTS+=("$label|$rps|$p99")
}

rps_of() { # label
	local r
	for r in "${RESULTS[@]}"; do
		[ "${r%%|*}" = "$1" ] && { cut -d'|' -f2 <<<"$r"; return; }
	done
}

# next_port sets $PORT to the next port from $PORT up that nothing listens on
# (other people's servers may share the machine).
next_port() {
	while (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do
		PORT=$((PORT + 1))
	done
}
next_port; BARE_PORT=$PORT; PORT=$((PORT + 1))
next_port; SQLITE_PORT=$PORT; PORT=$((PORT + 1))
next_port; PG_PORT=$PORT

"$WORK/bare" --addr "127.0.0.1:$BARE_PORT" &
PIDS+=($!)
wait_up "http://127.0.0.1:$BARE_PORT/"

start_heldsway sqlite "$WORK/bench.db" "$SQLITE_PORT"
lua_token "$WORK/sqlite.key" >"$WORK/sqlite-token.lua"
lua_me "$SQLITE_PORT" "$WORK/sqlite.key" >"$WORK/sqlite-me.lua"

HAVE_PG=0
if command -v psql >/dev/null && psql "$PG_ADMIN" -qAtc 'SELECT 1' >/dev/null 2>&1; then
	psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $PG_DB" -c "CREATE DATABASE $PG_DB" >/dev/null
	PG_URL="${PG_ADMIN%%/postgres\?*}/$PG_DB?sslmode=disable"
	start_heldsway postgres "$PG_URL" "$PG_PORT"
	lua_token "$WORK/postgres.key" >"$WORK/postgres-token.lua"
	lua_me "$PG_PORT" "$WORK/postgres.key" >"$WORK/postgres-me.lua"
	HAVE_PG=1
else
	echo "bench: PostgreSQL not reachable at $PG_ADMIN; skipping its cases" >&2
fi

# The bare handler is measured before each store's pair, so each ratio compares
# figures taken minutes apart on the same (shared) machine.
measure "bare net/http (before SQLite)" "http://127.0.0.1:$BARE_PORT/"
measure "GET /v1/me, SQLite" "http://127.0.0.1:$SQLITE_PORT/v1/me" "$WORK/sqlite-me.lua"
measure "POST /v1/auth/token, SQLite" "http://127.0.0.1:$SQLITE_PORT/v1/auth/token" "$WORK/sqlite-token.lua"
if [ "$HAVE_PG" = 1 ]; then
	measure "bare net/http (before PostgreSQL)" "http://127.0.0.1:$BARE_PORT/"
	measure "GET /v1/me, PostgreSQL" "http://127.0.0.1:$PG_PORT/v1/me" "$WORK/postgres-me.lua"
	measure "POST /v1/auth/token, PostgreSQL" "http://127.0.0.1:$PG_PORT/v1/auth/token" "$WORK/postgres-token.lua"
fi

# Stop the servers gracefully (SIGTERM: background jobs of a script ignore
# SIGINT) so CPU profiles, if asked for, are written.
for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
PIDS=()

echo
echo "wrk -t$THREADS -c$CONNS -d${DUR}s --latency, loopback; $(nproc) cores, $(go env GOVERSION)"
echo
echo "| Case | Requests/s | p99 latency |"
echo "|---|---:|---:|"
for r in "${RESULTS[@]}"; do
	IFS='|' read -r label rps p99 <<<"$r"
	echo "| $label | $rps | $p99 |"
done
echo
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", 100 * a / b }'; }
echo "- /v1/me ÷ bare, SQLite: $(ratio "$(rps_of 'GET /v1/me, SQLite')" "$(rps_of 'bare net/http (before SQLite)')") (goal ≥ 50%)"
if [ "$HAVE_PG" = 1 ]; then
	echo "- /v1/me ÷ bare, PostgreSQL: $(ratio "$(rps_of 'GET /v1/me, PostgreSQL')" "$(rps_of 'bare net/http (before PostgreSQL)')") (goal ≥ 50%)"
fi
echo "- token exchange, SQLite: $(rps_of 'POST /v1/auth/token, SQLite')/s (goal ≥ 5000/s)"
