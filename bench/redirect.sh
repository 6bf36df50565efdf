#!/usr/bin/env bash
# Issue 4 benchmark: the click redirect GET /r/{slug} on SQLite and PostgreSQL,
# next to a bare net/http handler that only sets a cookie and redirects
# (bench/redirectbare), all measured with wrk over loopback in one run so the
# ratios compare like with like. PostgreSQL is measured as serve runs by
# default (its click journal on) and with --click-journal off. After each
# store's run it checks that the link's click_count equals both the rows in
# clicks and the 302s the server answered (its /metrics counter), warm-up
# included.
#
#   bash bench/redirect.sh
#
# Needs go, wrk and curl; the PostgreSQL case also needs psql and a server
# reachable as $BENCH_PG_ADMIN (it is skipped if it is not).
#
# Environment (all optional):
#   BENCH_DURATION     seconds per measurement (15)
#   BENCH_THREADS      wrk threads (2)
#   BENCH_CONNECTIONS  wrk connections (50)
#   BENCH_WARMUP       seconds of unmeasured load before each case (3)
#   BENCH_PG_ADMIN     admin URL for creating the database (postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)
#   BENCH_PG_DB        database to (re)create for the run (heldsway_bench_redirect;
#                      the run without the click journal uses <it>_direct)
#   BENCH_PORT         ports are taken from here upwards, skipping busy ones (28180)
#   BENCH_PROFILE      if set, a directory: each HeldSway server writes a CPU
#                      profile of its run there (heldsway serve --cpuprofile)
set -euo pipefail

cd "$(dirname "$0")/.."
DUR=${BENCH_DURATION:-15}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNECTIONS:-50}
WARMUP=${BENCH_WARMUP:-3}
PG_ADMIN=${BENCH_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
PG_DB=${BENCH_PG_DB:-heldsway_bench_redirect}
PORT=${BENCH_PORT:-28180}
PROFILE=${BENCH_PROFILE:-}
# A browser's User-Agent: requests without one are treated as bots and not counted.
UA="Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"

for tool in go wrk curl; do
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
go build -o "$WORK/bare" ./bench/redirectbare
go build -o "$WORK/seed" ./bench/redirectseed

wait_up() { # url
	for _ in $(seq 1 100); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "bench: $1 did not come up" >&2
	exit 1
}

# start_heldsway NAME DB PORT [FLAG...]: starts a server with the access log
# off (and, on PostgreSQL, its click journal in $WORK unless a FLAG says
# otherwise), creates the benchmark's link and checks that /r/{slug} records
# clicks.
start_heldsway() {
	local name=$1 db=$2 port=$3
	shift 3
	local extra=(--click-journal "$WORK/$name.clicks" "$@")
	if [ -n "$PROFILE" ]; then
		mkdir -p "$PROFILE"
		extra+=(--cpuprofile "$PROFILE/redirect-$name.cpu.pprof")
	fi
	HELDSWAY_ACCESS_LOG=0 "$WORK/heldsway" serve --addr "127.0.0.1:$port" --db "$db" "${extra[@]}" \
		>"$WORK/$name.out" 2>"$WORK/$name.err" &
	PIDS+=($!)
	SERVER_PID[$name]=$!
	wait_up "http://127.0.0.1:$port/healthz"
	"$WORK/seed" seed --db "$db" --slug bench >"$WORK/$name.link"
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' -A "$UA" "http://127.0.0.1:$port/r/bench")
	if [ "$code" != 302 ]; then
		echo "bench: GET /r/bench answered $code, not 302: does heldsway serve set api.Server.Tracker?" >&2
		exit 1
	fi
}

cat >"$WORK/redirect.lua" <<EOF
wrk.method = "GET"
wrk.headers["User-Agent"] = "$UA"
EOF

RESULTS=()
CHECKS=()
declare -A SERVER_PID
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
		echo "bench: $label had $errs responses other than 2xx/3xx; the figures are not valid" >&2
		exit 1
	fi
	RESULTS+=("$label|$rps|$p99")
}

# check_clicks LABEL PORT DB: click_count, the clicks rows and the server's
# count of 302s on GET /r/{slug} must be equal.
check_clicks() {
	local label=$1 port=$2 db=$3
	local served count rows metrics batch
	metrics=$(curl -fsS "http://127.0.0.1:$port/metrics")
	served=$(awk '/^heldsway_http_requests_total\{/ && /route="GET \/r\/\{slug\}"/ && /status="302"/ {printf "%d", $NF}' <<<"$metrics")
	# clicks per transaction: the group commit's mean batch
	batch=$(awk '/^heldsway_clicks_recorded_total / {c=$NF} /^heldsway_click_batches_total / {b=$NF} END {if (b > 0) printf "%.1f", c/b}' <<<"$metrics")
	# Stop the server first: on SQLite it acknowledges clicks through its
	# click journal and ingests them within 25 ms (its own reads sync first,
	# another process's raw reads may trail); a graceful stop ingests all.
	kill -INT "${SERVER_PID[$label]}" 2>/dev/null || true
	wait "${SERVER_PID[$label]}" 2>/dev/null || true
	read -r count rows < <("$WORK/seed" count --db "$db" --link "$(cat "$WORK/$label.link")")
	local verdict=ok
	if [ "$count" != "$served" ] || [ "$rows" != "$served" ]; then
		verdict=MISMATCH
	fi
	CHECKS+=("$label: 302s served $served, click_count $count, clicks rows $rows: $verdict (mean batch $batch clicks)")
	[ "$verdict" = ok ]
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
BARE_PID=$!
PIDS+=($BARE_PID)
for _ in $(seq 1 100); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$BARE_PORT/")" = 302 ] && break
	sleep 0.1
done

SQLITE_DB="$WORK/bench.db"
start_heldsway sqlite "$SQLITE_DB" "$SQLITE_PORT"

HAVE_PG=0
if command -v psql >/dev/null && psql "$PG_ADMIN" -qAtc 'SELECT 1' >/dev/null 2>&1; then
	psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $PG_DB" -c "CREATE DATABASE $PG_DB" >/dev/null
	PG_URL="${PG_ADMIN%%/postgres\?*}/$PG_DB?sslmode=disable"
	start_heldsway postgres "$PG_URL" "$PG_PORT"
	# The same without the click journal: each batch committed in PostgreSQL
	# before its 302s (--click-journal off), on a database of its own.
	psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS ${PG_DB}_direct" -c "CREATE DATABASE ${PG_DB}_direct" >/dev/null
	PG_DIRECT_URL="${PG_ADMIN%%/postgres\?*}/${PG_DB}_direct?sslmode=disable"
	next_port; PG_DIRECT_PORT=$PORT
	start_heldsway postgres-direct "$PG_DIRECT_URL" "$PG_DIRECT_PORT" --click-journal off
	HAVE_PG=1
else
	echo "bench: PostgreSQL not reachable at $PG_ADMIN; skipping its case" >&2
fi

# The bare handler is measured before each store's case, so each ratio compares
# figures taken seconds apart on the same (shared) machine.
FAIL=0
measure "bare net/http: cookie + 302 (before SQLite)" "http://127.0.0.1:$BARE_PORT/r/bench" "$WORK/redirect.lua"
measure "GET /r/{slug}, SQLite" "http://127.0.0.1:$SQLITE_PORT/r/bench" "$WORK/redirect.lua"
check_clicks sqlite "$SQLITE_PORT" "$SQLITE_DB" || FAIL=1
if [ "$HAVE_PG" = 1 ]; then
	measure "bare net/http: cookie + 302 (before PostgreSQL)" "http://127.0.0.1:$BARE_PORT/r/bench" "$WORK/redirect.lua"
	measure "GET /r/{slug}, PostgreSQL" "http://127.0.0.1:$PG_PORT/r/bench" "$WORK/redirect.lua"
	check_clicks postgres "$PG_PORT" "$PG_URL" || FAIL=1
	measure "bare net/http: cookie + 302 (before PostgreSQL, journal off)" "http://127.0.0.1:$BARE_PORT/r/bench" "$WORK/redirect.lua"
	measure "GET /r/{slug}, PostgreSQL, --click-journal off" "http://127.0.0.1:$PG_DIRECT_PORT/r/bench" "$WORK/redirect.lua"
	check_clicks postgres-direct "$PG_DIRECT_PORT" "$PG_DIRECT_URL" || FAIL=1
fi

# Stop the servers gracefully so CPU profiles, if asked for, are written. The
# bare server ignores SIGINT (a background job of a script starts with it
# ignored, and it installs no handler), so it gets SIGTERM.
for pid in "${PIDS[@]}"; do
	if [ "$pid" = "$BARE_PID" ]; then kill "$pid" 2>/dev/null || true; else kill -INT "$pid" 2>/dev/null || true; fi
done
for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
PIDS=()

echo
echo "wrk -t$THREADS -c$CONNS -d${DUR}s --latency, loopback, a browser User-Agent and no cookies (every request a new visitor, so every one is counted); $(nproc) cores, $(go env GOVERSION)"
echo
echo "| Case | Requests/s | p99 latency |"
echo "|---|---:|---:|"
for r in "${RESULTS[@]}"; do
	IFS='|' read -r label rps p99 <<<"$r"
	echo "| $label | $rps | $p99 |"
done
echo
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", 100 * a / b }'; }
echo "- /r/{slug} ÷ bare, SQLite: $(ratio "$(rps_of 'GET /r/{slug}, SQLite')" "$(rps_of 'bare net/http: cookie + 302 (before SQLite)')") (goal ≥ 50%, p99 < 25 ms)"
if [ "$HAVE_PG" = 1 ]; then
	echo "- /r/{slug} ÷ bare, PostgreSQL: $(ratio "$(rps_of 'GET /r/{slug}, PostgreSQL')" "$(rps_of 'bare net/http: cookie + 302 (before PostgreSQL)')") (goal ≥ 50%, p99 < 25 ms)"
	echo "- /r/{slug} ÷ bare, PostgreSQL with --click-journal off: $(ratio "$(rps_of 'GET /r/{slug}, PostgreSQL, --click-journal off')" "$(rps_of 'bare net/http: cookie + 302 (before PostgreSQL, journal off)')")"
fi
for c in "${CHECKS[@]}"; do
	echo "- $c"
done
exit "$FAIL"
