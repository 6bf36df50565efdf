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
# The machine may be shared, so the cases are interleaved: every round measures
# each case once, in the same order, and the summary gives the median over the
# rounds. The /v1/me ÷ bare ratio is taken within each round (measurements
# seconds apart) and its median reported. "CPU/req" is the server process's own
# CPU time (user + system, from /proc) divided by the requests it answered: it
# moves far less with other load on the machine than req/s does.
#
# Environment (all optional):
#   BENCH_ROUNDS       rounds (3)
#   BENCH_DURATION     seconds per case per round (5; 3 rounds make 15 s a case)
#   BENCH_THREADS      wrk threads (2)
#   BENCH_CONNECTIONS  wrk connections (50)
#   BENCH_WARMUP       seconds of unmeasured load per case before round 1 (2)
#   BENCH_PG_ADMIN     admin URL for creating the database (postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable)
#   BENCH_PG_DB        database to (re)create for the run (heldsway_bench)
#   BENCH_PORT         ports are taken from here upwards, skipping busy ones (28080)
#   BENCH_PROFILE      if set, a directory: each HeldSway server writes a CPU
#                      profile of its whole run there (heldsway serve --cpuprofile)
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${BENCH_ROUNDS:-3}
DUR=${BENCH_DURATION:-5}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNECTIONS:-50}
WARMUP=${BENCH_WARMUP:-2}
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

# next_port sets $PORT to the next port from $PORT up that nothing listens on
# (other people's servers may share the machine).
next_port() {
	while (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do
		PORT=$((PORT + 1))
	done
}

declare -A URL LUA PID_OF
CASES=()

# add_case NAME PID URL [LUA]
add_case() {
	CASES+=("$1")
	PID_OF[$1]=$2
	URL[$1]=$3
	LUA[$1]=${4:-}
}

# start_heldsway NAME DB: starts a server with the access log off and the token
# endpoint's per-IP throttle lifted (production keeps the documented 120/min),
# creates a key, and registers the /v1/me and token cases.
start_heldsway() {
	local name=$1 db=$2
	next_port
	local port=$PORT
	PORT=$((PORT + 1))
	local extra=()
	if [ -n "$PROFILE" ]; then
		mkdir -p "$PROFILE"
		extra=(--cpuprofile "$PROFILE/$name.cpu.pprof")
	fi
	HELDSWAY_ACCESS_LOG=0 HELDSWAY_TOKEN_IP_LIMIT=1000000000 \
		"$WORK/heldsway" serve --addr "127.0.0.1:$port" --db "$db" "${extra[@]}" \
		>"$WORK/$name.out" 2>"$WORK/$name.err" &
	local pid=$!
	PIDS+=("$pid")
	wait_up "http://127.0.0.1:$port/healthz"
	# A read-only key whose per-minute budget does not cap the benchmark.
	"$WORK/heldsway" key create --db "$db" --workspace 1 --name bench --scopes read-only \
		--rate-limit 1000000 --json >"$WORK/$name.key"
	local key secret token
	key=$(jq -r .api_key "$WORK/$name.key")
	secret=$(jq -r .api_secret "$WORK/$name.key")
	# wrk scripts: the exchange posts the credentials as JSON; /v1/me sends a
	# bearer token obtained once beforehand.
	cat >"$WORK/$name-token.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"api_key":"$key","api_secret":"$secret"}'
EOF
	token=$(curl -fsS "http://127.0.0.1:$port/v1/auth/token" -H 'Content-Type: application/json' \
		-d "{\"api_key\":\"$key\",\"api_secret\":\"$secret\"}" | jq -r .data.access_token)
	[ -n "$token" ] && [ "$token" != null ] || { echo "bench: no token from $name" >&2; exit 1; }
	cat >"$WORK/$name-me.lua" <<EOF
wrk.method = "GET"
wrk.headers["Authorization"] = "Bearer $token"
EOF
	add_case "me-$name" "$pid" "http://127.0.0.1:$port/v1/me" "$WORK/$name-me.lua"
	add_case "token-$name" "$pid" "http://127.0.0.1:$port/v1/auth/token" "$WORK/$name-token.lua"
}

next_port
BARE_PORT=$PORT
PORT=$((PORT + 1))
"$WORK/bare" --addr "127.0.0.1:$BARE_PORT" &
BARE_PID=$!
PIDS+=("$BARE_PID")
wait_up "http://127.0.0.1:$BARE_PORT/"
add_case bare "$BARE_PID" "http://127.0.0.1:$BARE_PORT/"

start_heldsway sqlite "$WORK/bench.db"

HAVE_PG=0
if command -v psql >/dev/null && psql "$PG_ADMIN" -qAtc 'SELECT 1' >/dev/null 2>&1; then
	psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $PG_DB" -c "CREATE DATABASE $PG_DB" >/dev/null
	start_heldsway postgres "${PG_ADMIN%%/postgres\?*}/$PG_DB?sslmode=disable"
	HAVE_PG=1
else
	echo "bench: PostgreSQL not reachable at $PG_ADMIN; skipping its cases" >&2
fi

TICK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# to_ms converts a wrk latency (850.00us, 1.20ms, 1.37s) to milliseconds.
to_ms() {
	awk -v v="$1" 'BEGIN {
		n = v + 0
		if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000
		printf "%.2f", n }'
}

LINES=() # case|round|req/s|p99 ms|CPU µs per request
# measure CASE ROUND: one wrk run; records req/s, p99 and the server's CPU per request.
measure() {
	local c=$1 round=$2
	local args=(-t"$THREADS" -c"$CONNS" --latency)
	[ -n "${LUA[$c]}" ] && args+=(-s "${LUA[$c]}")
	echo "# round $round: $c ${URL[$c]}" >&2
	local t0 t1 out
	t0=$(cpu_ticks "${PID_OF[$c]}")
	out=$(wrk "${args[@]}" -d"${DUR}s" "${URL[$c]}")
	t1=$(cpu_ticks "${PID_OF[$c]}")
	echo "$out" >&2
	if grep -q 'Non-2xx or 3xx responses' <<<"$out"; then
		echo "bench: $c answered non-2xx responses; the figures are not valid" >&2
		exit 1
	fi
	local rps p99 n cpu
	rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	p99=$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")
	n=$(awk '/ requests in / {print $1}' <<<"$out")
	cpu=$(awk -v t=$((t1 - t0)) -v hz="$TICK" -v n="$n" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')
	LINES+=("$c|$round|$rps|$p99|$cpu")
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
if [ "$WARMUP" -gt 0 ]; then
	for c in "${CASES[@]}"; do
		args=(-t"$THREADS" -c"$CONNS")
		[ -n "${LUA[$c]}" ] && args+=(-s "${LUA[$c]}")
		wrk "${args[@]}" -d"${WARMUP}s" "${URL[$c]}" >/dev/null
	done
fi
for round in $(seq 1 "$ROUNDS"); do
	for c in "${CASES[@]}"; do
		measure "$c" "$round"
	done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# Stop the servers gracefully (SIGTERM: background jobs of a script ignore
# SIGINT) so CPU profiles, if asked for, are written.
for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
PIDS=()

# field CASE ROUND N: column N (3 req/s, 4 p99, 5 CPU) of one measurement.
field() {
	local l
	for l in "${LINES[@]}"; do
		IFS='|' read -r c r rest <<<"$l"
		if [ "$c" = "$1" ] && [ "$r" = "$2" ]; then
			cut -d'|' -f"$3" <<<"$l"
			return
		fi
	done
}
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
med() { # CASE N
	for r in $(seq 1 "$ROUNDS"); do field "$1" "$r" "$2"; done | median
}
ratio_med() { # CASE: median over rounds of CASE req/s ÷ bare req/s
	for r in $(seq 1 "$ROUNDS"); do
		awk -v a="$(field "$1" "$r" 3)" -v b="$(field bare "$r" 3)" 'BEGIN { printf "%.4f\n", a / b }'
	done | median
}
pct() { awk -v x="$1" 'BEGIN { printf "%.0f%%", 100 * x }'; }

declare -A LABEL=(
	[bare]="bare net/http handler"
	[me-sqlite]="GET /v1/me, SQLite"
	[token-sqlite]="POST /v1/auth/token, SQLite"
	[me-postgres]="GET /v1/me, PostgreSQL"
	[token-postgres]="POST /v1/auth/token, PostgreSQL"
)

echo
echo "$(nproc) cores, $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $(go env GOVERSION), $(wrk --version 2>&1 | awk 'NR == 1 {print $1, $2}')"
echo "wrk -t$THREADS -c$CONNS --latency over loopback; $ROUNDS interleaved rounds of ${DUR}s per case; medians"
echo "load average before: $LOAD_BEFORE; after: $LOAD_AFTER"
echo
echo "| Case | Requests/s | p99 latency | Server CPU per request |"
echo "|---|---:|---:|---:|"
for c in "${CASES[@]}"; do
	printf '| %s | %.0f | %.2f ms | %.1f µs |\n' "${LABEL[$c]}" "$(med "$c" 3)" "$(med "$c" 4)" "$(med "$c" 5)"
done
echo
echo "Per round (req/s):"
for c in "${CASES[@]}"; do
	printf -- '- %s:' "${LABEL[$c]}"
	for r in $(seq 1 "$ROUNDS"); do printf ' %.0f' "$(field "$c" "$r" 3)"; done
	echo
done
echo
echo "- /v1/me ÷ bare, SQLite: $(pct "$(ratio_med me-sqlite)") (median of per-round ratios; goal ≥ 50%)"
if [ "$HAVE_PG" = 1 ]; then
	echo "- /v1/me ÷ bare, PostgreSQL: $(pct "$(ratio_med me-postgres)") (median of per-round ratios; goal ≥ 50%)"
fi
printf -- '- token exchange, SQLite: %.0f/s (goal ≥ 5,000/s)\n' "$(med token-sqlite 3)"
