#!/usr/bin/env bash
# Orca on PostgreSQL, all in one run: the pgbench ceiling (ceiling.sh), Orca's burn-down of
# one job × EXECUTIONS executions with 1, 2 and 3 engine processes (synchronous_commit on and
# off, in two engine configurations), and create→claim latency at RATE executions/s offered.
# Repeats everything REPS times, interleaved, and prints a Markdown table of medians.
#
#   benches/postgres/run.sh [URL]                 # measure, then print the table
#   benches/postgres/run.sh --report RAW...       # print the table of earlier raw results
#
# Environment: REPS (default 2), EXECUTIONS (100000), RATE (1000), LAT_SECONDS (20),
# CEILING_SECONDS (15), CEILING_CLIENTS (4), NODES ("1 2 3"), SYNC ("on off"),
# LAT_NODES ("1 2"), CONFIGS (engine configurations, "label:arguments" separated by ";",
# default "default:;wide:--concurrency 4096 --claim-batch 2048 --write-batch 4096").
# Every Orca run works in its own scratch schema (dropped afterwards); raw results are kept in
# $OUT (default: a temporary directory, printed at the end).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
report_only=false
if [ "${1:-}" = --report ]; then
  report_only=true
  shift
  [ $# -gt 0 ] || { echo "run.sh: --report needs raw result files" >&2; exit 2; }
  raws=("$@")
  set --
fi
url=${1:-${ORCA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}}
reps=${REPS:-2}
executions=${EXECUTIONS:-100000}
rate=${RATE:-1000}
lat_seconds=${LAT_SECONDS:-20}
ceiling_seconds=${CEILING_SECONDS:-15}
ceiling_clients=${CEILING_CLIENTS:-4}
nodes_list=${NODES:-1 2 3}
sync_list=${SYNC:-on off}
lat_nodes=${LAT_NODES:-1 2}
configs=${CONFIGS:-default:;wide:--concurrency 4096 --claim-batch 2048 --write-batch 4096}
IFS=';' read -r -a config_list <<<"$configs"

load() { cut -d' ' -f1 /proc/loadavg; }
log() { echo "[$(date +%T) load $(load)] $*" >&2; }

if $report_only; then
  raw=$(mktemp /tmp/orca-pg-bench-merged.XXXXXX)
  cat "${raws[@]}" >"$raw"
  reps=$(grep -c '^RESULT ceiling script=single.sql sync=on ' "$raw" || true)
  out=$(dirname "$raw")
else
  for tool in psql pgbench bc awk cargo; do
    command -v "$tool" >/dev/null || { echo "run.sh: needs $tool" >&2; exit 2; }
  done
  psql -qAt "$url" -c 'SELECT 1' >/dev/null || { echo "run.sh: cannot reach $url" >&2; exit 2; }
  out=${OUT:-$(mktemp -d /tmp/orca-pg-bench.XXXXXX)}
  mkdir -p "$out"
  raw="$out/results.txt"
  : >"$raw"

  # Build once (release profile); find the bench executable.
  cd "$root"
  bench=$(cargo bench -p orca-benches --bench postgres --no-run --message-format=json 2>"$out/build.log" \
    | grep -F '"kind":["bench"]' | grep -F '"name":"postgres"' \
    | grep -o '"executable":"[^"]*"' | cut -d'"' -f4 | tail -n 1)
  [ -x "$bench" ] || { echo "run.sh: build failed, see $out/build.log" >&2; tail -20 "$out/build.log" >&2; exit 2; }

  # One Orca run: its RESULT line (tagged) goes to the raw file; a failure is logged, not fatal.
  orca() { # tag args...
    local tag=$1 line
    shift
    if line=$("$bench" "$@" 2>>"$out/bench.log" | grep '^RESULT '); then
      echo "$line $tag" | tee -a "$raw" >&2
    else
      why=$(grep '^postgres bench: ' "$out/bench.log" | tail -n 1)
      log "FAILED: $* — $why (see $out/bench.log)"
      echo "FAILED $* $tag — $why" >>"$raw"
    fi
  }

  for rep in $(seq 1 "$reps"); do
    log "rep $rep/$reps: pgbench ceiling (${ceiling_seconds}s per script, $ceiling_clients clients)"
    l=$(load)
    "$here/ceiling.sh" "$url" "$ceiling_seconds" "$ceiling_clients" | tee -a "$out/ceiling.log" \
      | awk -v rep="$rep" -v l="$l" '{ split($2, s, "="); printf "RESULT ceiling script=%s sync=%s rate=%s rep=%s load=%s\n", $1, s[2], $3, rep, l }' \
      | tee -a "$raw" >&2
    for cfg in "${config_list[@]}"; do
      label=${cfg%%:*}
      args=${cfg#*:}
      for sc in $sync_list; do
        for n in $nodes_list; do
          log "rep $rep/$reps: burn-down, $n node(s), synchronous_commit=$sc, config $label"
          # shellcheck disable=SC2086
          orca "config=$label rep=$rep" burn --database "$url" --nodes "$n" \
            --synchronous-commit "$sc" --executions "$executions" $args
        done
      done
    done
    for sc in $sync_list; do
      for n in $lat_nodes; do
        log "rep $rep/$reps: latency at $rate executions/s, $n node(s), synchronous_commit=$sc"
        orca "rep=$rep" latency --database "$url" --nodes "$n" --synchronous-commit "$sc" \
          --rate "$rate" --seconds "$lat_seconds"
      done
    done
  done
fi

# Medians. `pick KIND FIELD FILTER...` prints the median of FIELD over RESULT lines of KIND whose
# fields match every FILTER (key=value), and the values it came from.
pick() {
  local kind=$1 field=$2
  shift 2
  awk -v kind="$kind" -v field="$field" -v filters="$*" '
    $1 == "RESULT" && $2 == kind {
      delete f
      for (i = 3; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
      n = split(filters, fl, " ")
      ok = 1
      for (i = 1; i <= n; i++) { split(fl[i], kv, "="); if (f[kv[1]] != kv[2]) ok = 0 }
      if (ok && (field in f)) v[++m] = f[field]
    }
    END {
      if (m == 0) { print "n/a"; exit }
      for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (v[j] + 0 < v[i] + 0) { t = v[i]; v[i] = v[j]; v[j] = t }
      med = (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
      all = v[1]; for (i = 2; i <= m; i++) all = all ", " v[i]
      printf "%s|%s\n", med, all
    }' "$raw"
}
# How many runs of a cell failed (FAILED lines carry the command's arguments).
failed() { # kind args-to-match...
  local kind=$1 n
  shift
  n=$(grep "^FAILED $kind " "$raw" | grep -cF -- "$*" || true)
  [ "$n" -gt 0 ] && echo " ($n failed)" || true
}
num() { echo "${1%%|*}"; }
dec() { [ "$1" = n/a ] && echo n/a || printf "%.${2:-1}f" "$1"; }
runs() { echo "${1#*|}"; }
fmt() { [ "$1" = n/a ] && echo n/a || printf "%.0f" "$1" | sed -e ':a' -e 's/\B[0-9]\{3\}\>/,&/' -e 'ta'; }
pct() { [ "$1" = n/a ] || [ "$2" = n/a ] && echo n/a || echo "$(echo "100 * $1 / $2" | bc -l | xargs printf '%.0f')%"; }

echo
echo "## Orca on PostgreSQL — $(date -u +%Y-%m-%d)"
echo
echo "Machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo) RAM;"
echo "$(psql -qAt "$url" -c 'SHOW server_version' | sed 's/^/PostgreSQL /') (shared_buffers $(psql -qAt "$url" -c 'SHOW shared_buffers'), fsync $(psql -qAt "$url" -c 'SHOW fsync'));"
echo "load average (1-minute) during the runs: $(awk '$1 == "RESULT" { for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "load" || kv[1] == "load_before" || kv[1] == "load_after") { v = kv[2] + 0; if (n == 0 || v < lo) lo = v; if (n == 0 || v > hi) hi = v; n++ } } } END { printf "%.1f–%.1f", lo, hi }' "$raw"); $reps repetitions, medians shown, every run's value in brackets."
echo
echo "### Physical ceiling (pgbench: insert → claim → complete, ${ceiling_clients} clients)"
echo
echo "| statement shape | synchronous_commit | executions/s | load before |"
echo "|---|---|---:|---:|"
for sc in $sync_list; do
  for s in single.sql batch100.sql; do
    r=$(pick ceiling rate script=$s sync=$sc)
    label=$([ $s = single.sql ] && echo "one row per statement" || echo "100 rows per statement")
    echo "| $label | $sc | $(fmt "$(num "$r")") [$(runs "$r")] | $(dec "$(num "$(pick ceiling load script=$s sync=$sc)")") |"
  done
done
echo
echo "### Burn-down: 1 job × $(fmt "$executions") executions, no-op connector, first claim → last finish"
echo
echo "| engine config | nodes | synchronous_commit | executions/s | % of batched ceiling | submit (s) | node CPU (s) | PostgreSQL CPU (s) | load before |"
echo "|---|---:|---|---:|---:|---:|---:|---:|---:|"
for cfg in "${config_list[@]}"; do
  label=${cfg%%:*}
  args=${cfg#*:}
  for sc in $sync_list; do
    batched=$(num "$(pick ceiling rate script=batch100.sql sync=$sc)")
    for n in $nodes_list; do
      r=$(pick burn rate config=$label nodes=$n sync=$sc)
      g() { dec "$(num "$(pick burn "$1" config=$label nodes=$n sync=$sc)")" "${2:-1}"; }
      f=$(failed burn "--nodes $n --synchronous-commit $sc --executions $executions${args:+ $args} config=$label ")
      echo "| $label${args:+ (\`$args\`)} | $n | $sc | $(fmt "$(num "$r")") [$(runs "$r")]$f | $(pct "$(num "$r")" "$batched") | $(g submit_secs) | $(g node_cpu_secs) | $(g pg_cpu_secs) | $(g load_before) |"
    done
  done
done
echo
echo "### create→claim latency at $(fmt "$rate") executions/s offered (jobs of 10, open loop, ${lat_seconds}s)"
echo
echo "| nodes | synchronous_commit | achieved executions/s | p50 (ms) | p99 (ms) | max (ms) | submit p99 (ms) | load before |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|"
for sc in $sync_list; do
  for n in $lat_nodes; do
    f() { pick latency "$1" nodes=$n sync=$sc; }
    x=$(failed latency "--nodes $n --synchronous-commit $sc ")
    echo "| $n | $sc | $(fmt "$(num "$(f achieved_rate)")")$x | $(dec "$(num "$(f p50_ms)")") [$(runs "$(f p50_ms)")] | $(dec "$(num "$(f p99_ms)")") [$(runs "$(f p99_ms)")] | $(dec "$(num "$(f max_ms)")") | $(dec "$(num "$(f submit_p99_ms)")") | $(dec "$(num "$(f load_before)")") |"
  done
done
echo
echo "Raw results: $raw"
