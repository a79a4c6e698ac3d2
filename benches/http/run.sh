#!/usr/bin/env bash
# HTTP API benchmark: wrk against the Orca HTTP server (the real router and request pipeline,
# SQLite, engine with the scripted connector) and, in the same run, a bare poem hello-world on
# the same runtime as the ceiling. Loopback only; every wrk run is bounded by DURATION.
#
#   benches/http/run.sh                      (needs wrk: apt-get install -y wrk)
#
# Targets, measured in every repetition, interleaved (so load drift hits all alike):
#   hello         GET /                             bare poem hello-world (the ceiling)
#   healthz       GET /healthz                      Orca pipeline, no auth, no store
#   exec_jwt      GET /api/v1/executions/{id}       JWT access token (from POST /auth/login)
#   exec_token    GET /api/v1/executions/{id}       API token
#   exec_nocache  GET /api/v1/executions/{id}       JWT, on a second server with
#                                                   --auth-cache-ms 0 (every request reads the
#                                                   session, user and grants from the store)
#   exec_memory   GET /api/v1/executions/{id}       JWT, on a third server over orca-core's
#                                                   in-memory store (no database round trip)
#   auth_me       GET /api/v1/auth/me               JWT: authentication without a store read
#   post_jobs     POST /api/v1/jobs                 10 systems (post_jobs.lua), JWT; the engine
#                                                   runs them; the queue is drained before the
#                                                   next repetition
# Environment: REPS (3), DURATION (10s per measurement), WARMUP (2s, discarded, before each),
# CONNECTIONS (64), THREADS (2), POST_CONNECTIONS (16), SYSTEMS (10), TARGETS (all of the
# above), BASE_PORT (18180: hello, +1 orca, +2 orca without cache, +3 orca in memory), WORK
# (/tmp/orca-http-bench),
# SKIP_BUILD=1 uses the binaries already built.
# Writes $WORK/results.csv (every run) and $WORK/results.md (medians; the machine, load
# averages and the commands). Exits non-zero if any measured run had errors or non-2xx answers.
set -euo pipefail

REPS=${REPS:-3}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
CONNECTIONS=${CONNECTIONS:-64}
POST_CONNECTIONS=${POST_CONNECTIONS:-16}
THREADS=${THREADS:-2}
SYSTEMS=${SYSTEMS:-10}
TARGETS=${TARGETS:-"hello healthz exec_jwt exec_token exec_nocache exec_memory auth_me post_jobs"}
BASE_PORT=${BASE_PORT:-18180}
WORK=${WORK:-/tmp/orca-http-bench}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples

die() { echo "run.sh: $*" >&2; exit 2; }
log() { echo "[$(date +%T)] $*" >&2; }

command -v wrk >/dev/null || die "wrk missing: apt-get install -y wrk"
command -v curl >/dev/null || die "curl missing: apt-get install -y curl"
command -v python3 >/dev/null || die "python3 missing"
[[ "$REPS" =~ ^[1-9][0-9]*$ ]] || die "REPS must be a positive number"

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    log "building the servers (release)"
    (cd "$ROOT" && cargo build -q --release -p orca-benches \
        --example orca-http-bench-server --example orca-http-bench-hello)
fi

mkdir -p "$WORK"
chmod 700 "$WORK"
HELLO_PORT=$BASE_PORT
ORCA_PORT=$((BASE_PORT + 1))
NOCACHE_PORT=$((BASE_PORT + 2))
MEMORY_PORT=$((BASE_PORT + 3))
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# start NAME OUTFILE CMD...: runs CMD in the background, waits for its READY line.
start() {
    local name=$1 out=$2
    shift 2
    "$@" >"$out" 2>"$out.err" &
    PIDS+=($!)
    local pid=$!
    for _ in $(seq 1 600); do
        grep -q '^READY ' "$out" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || die "$name exited: $(tail -5 "$out.err")"
        sleep 0.1
    done
    die "$name did not become ready in 60 s"
}
field() { sed -n "s/^$1=//p" "$2" | head -1; }

log "starting servers"
start hello "$WORK/hello.out" "$BIN/orca-http-bench-hello" --listen "127.0.0.1:$HELLO_PORT"
start orca "$WORK/orca.out" "$BIN/orca-http-bench-server" --listen "127.0.0.1:$ORCA_PORT" \
    --systems "$SYSTEMS"
start orca-nocache "$WORK/nocache.out" "$BIN/orca-http-bench-server" \
    --listen "127.0.0.1:$NOCACHE_PORT" --systems "$SYSTEMS" --auth-cache-ms 0
start orca-memory "$WORK/memory.out" "$BIN/orca-http-bench-server" \
    --listen "127.0.0.1:$MEMORY_PORT" --systems "$SYSTEMS" --store memory

login() { # PORT OUTFILE -> access token
    local user pass
    user=$(field USERNAME "$2")
    pass=$(field PASSWORD "$2")
    curl -sf -X POST "http://127.0.0.1:$1/api/v1/auth/login" -H 'content-type: application/json' \
        -d "{\"username\":\"$user\",\"password\":\"$pass\"}" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

drain() { # wait until the engine has finished every submitted execution (at most 600 s)
    for _ in $(seq 1 600); do
        local m
        m=$(curl -sf "http://127.0.0.1:$ORCA_PORT/metrics" || true)
        if grep -q '^orca_executions{state="pending"} 0$' <<<"$m" &&
            grep -q '^orca_executions{state="running"} 0$' <<<"$m"; then
            return 0
        fi
        sleep 1
    done
    log "warning: the queue did not drain in 600 s"
}

EXEC=$(field EXECUTION_ID "$WORK/orca.out")
EXEC_NC=$(field EXECUTION_ID "$WORK/nocache.out")
EXEC_MEM=$(field EXECUTION_ID "$WORK/memory.out")
API_TOKEN=$(field API_TOKEN "$WORK/orca.out")
SYSTEM_LIST=$(field SYSTEMS "$WORK/orca.out")

# The commands, as they are run (secrets as $VARIABLES).
cmd_for() { # TARGET -> the wrk command line (for the report)
    local c="wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency"
    case $1 in
    hello) echo "$c http://127.0.0.1:$HELLO_PORT/" ;;
    healthz) echo "$c http://127.0.0.1:$ORCA_PORT/healthz" ;;
    exec_jwt) echo "$c -H 'Authorization: Bearer \$JWT' http://127.0.0.1:$ORCA_PORT/api/v1/executions/$EXEC" ;;
    exec_token) echo "$c -H 'Authorization: Bearer \$API_TOKEN' http://127.0.0.1:$ORCA_PORT/api/v1/executions/$EXEC" ;;
    exec_nocache) echo "$c -H 'Authorization: Bearer \$JWT' http://127.0.0.1:$NOCACHE_PORT/api/v1/executions/$EXEC_NC" ;;
    exec_memory) echo "$c -H 'Authorization: Bearer \$JWT' http://127.0.0.1:$MEMORY_PORT/api/v1/executions/$EXEC_MEM" ;;
    auth_me) echo "$c -H 'Authorization: Bearer \$JWT' http://127.0.0.1:$ORCA_PORT/api/v1/auth/me" ;;
    post_jobs) echo "ORCA_TOKEN=\$JWT ORCA_SYSTEMS=$SYSTEM_LIST wrk -t$THREADS -c$POST_CONNECTIONS -d$DURATION --latency -s benches/http/post_jobs.lua http://127.0.0.1:$ORCA_PORT/api/v1/jobs" ;;
    *) die "unknown target $1" ;;
    esac
}

run_wrk() { # TARGET DURATION -> wrk output on stdout
    local t=$1 d=$2
    case $t in
    hello) wrk -t"$THREADS" -c"$CONNECTIONS" -d"$d" --latency "http://127.0.0.1:$HELLO_PORT/" ;;
    healthz) wrk -t"$THREADS" -c"$CONNECTIONS" -d"$d" --latency "http://127.0.0.1:$ORCA_PORT/healthz" ;;
    exec_jwt) wrk -t"$THREADS" -c"$CONNECTIONS" -d"$d" --latency -H "Authorization: Bearer $JWT" \
        "http://127.0.0.1:$ORCA_PORT/api/v1/executions/$EXEC" ;;
    exec_token) wrk -t"$THREADS" -c"$CONNECTIONS" -d"$d" --latency -H "Authorization: Bearer $API_TOKEN" \
        "http://127.0.0.1:$ORCA_PORT/api/v1/executions/$EXEC" ;;
    exec_nocache) wrk -t"$THREADS" -c"$CONNECTIONS" -d"$d" --latency -H "Authorization: Bearer $JWT_NC" \
        "http://127.0.0.1:$NOCACHE_PORT/api/v1/executions/$EXEC_NC" ;;
    exec_memory) wrk -t"$THREADS" -c"$CONNECTIONS" -d"$d" --latency -H "Authorization: Bearer $JWT_MEM" \
        "http://127.0.0.1:$MEMORY_PORT/api/v1/executions/$EXEC_MEM" ;;
    auth_me) wrk -t"$THREADS" -c"$CONNECTIONS" -d"$d" --latency -H "Authorization: Bearer $JWT" \
        "http://127.0.0.1:$ORCA_PORT/api/v1/auth/me" ;;
    post_jobs) ORCA_TOKEN=$JWT ORCA_SYSTEMS=$SYSTEM_LIST wrk -t"$THREADS" -c"$POST_CONNECTIONS" -d"$d" \
        --latency -s "$HERE/post_jobs.lua" "http://127.0.0.1:$ORCA_PORT/api/v1/jobs" ;;
    esac
}

CSV=$WORK/results.csv
echo "rep,target,rps,p50_ms,p99_ms,non2xx,socket_errors,load1_before" >"$CSV"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average at start: $LOAD_START"
FAILED=0
for rep in $(seq 1 "$REPS"); do
    JWT=$(login "$ORCA_PORT" "$WORK/orca.out")
    JWT_NC=$(login "$NOCACHE_PORT" "$WORK/nocache.out")
    JWT_MEM=$(login "$MEMORY_PORT" "$WORK/memory.out")
    for t in $TARGETS; do
        run_wrk "$t" "$WARMUP" >/dev/null
        [ "$t" = post_jobs ] && drain
        load1=$(cut -d' ' -f1 /proc/loadavg)
        out=$(run_wrk "$t" "$DURATION")
        echo "$out" >"$WORK/wrk-$rep-$t.txt"
        row=$(python3 "$HERE/parse_wrk.py" <<<"$out")
        echo "$rep,$t,$row,$load1" >>"$CSV"
        log "rep $rep $t: $row (rps,p50_ms,p99_ms,non2xx,socket_errors; load $load1)"
        IFS=, read -r _ _ _ n2 se <<<"$row"
        [ "$n2" = 0 ] && [ "$se" = 0 ] || FAILED=1
        [ "$t" = post_jobs ] && drain
    done
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

{
    echo "# HTTP benchmark results"
    echo
    echo "- machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), $(free -g | awk '/^Mem:/{print $2}') GiB"
    echo "- load average (1/5/15 min) at start: $LOAD_START; at end: $LOAD_END"
    echo "- $REPS repetitions x ${DURATION} per target (after a ${WARMUP} warm-up), interleaved; medians"
    echo "- wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'), $THREADS threads, $CONNECTIONS connections (POST: $POST_CONNECTIONS), loopback"
    echo
    python3 "$HERE/parse_wrk.py" --summary "$CSV"
    echo
    echo "Commands:"
    echo
    echo '```'
    for t in $TARGETS; do cmd_for "$t"; done
    echo '```'
} >"$WORK/results.md"
cat "$WORK/results.md"
[ "$FAILED" = 0 ] || die "some runs had errors or non-2xx answers: see $WORK/wrk-*.txt"
