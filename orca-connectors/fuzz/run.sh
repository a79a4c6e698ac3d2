#!/usr/bin/env bash
# Fuzz the WinRM parsers with cargo fuzz (nightly toolchain + libFuzzer), one target after the
# other, each for SECONDS (default 60). Corpus in fuzz/corpus/<target> (grows, gitignored), seeds
# regenerated into fuzz/seeds/<target>, crashes in fuzz/artifacts/<target>. See docs/fuzzing.md.
#   bash orca-connectors/fuzz/run.sh 600                 # every target, 10 minutes each
#   bash orca-connectors/fuzz/run.sh 60 sealing ntlm     # some targets
#   KEEP_GOING=1 bash orca-connectors/fuzz/run.sh 600    # fork mode: go on after a crash
# Exits 1 if any target crashed (artifacts are kept for `cargo +nightly fuzz run TARGET FILE`).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(soap_response clixml sealing ntlm)
cargo run -q -p orca-connectors --no-default-features --features fuzzing \
  --example winrm_fuzz_seeds -- fuzz/seeds
extra=()
[ "${KEEP_GOING:-0}" = 1 ] && extra=(-fork=1 -ignore_crashes=1)
failed=0
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  before=$(ls "fuzz/artifacts/$t" | wc -l)
  echo "=== $t: ${secs}s"
  rc=0
  cargo +nightly fuzz run -O "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 "${extra[@]}" \
    >"fuzz/$t.log" 2>&1 || rc=$?
  grep -E '^#[0-9]+ +(INITED|DONE)|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|^Done|^#[0-9]+: cov' "fuzz/$t.log" | tail -4
  crashes=$(( $(ls "fuzz/artifacts/$t" | wc -l) - before ))
  if [ "$rc" != 0 ] || [ "$crashes" -gt 0 ]; then
    failed=1
    echo "=== $t: $crashes new crash input(s) in fuzz/artifacts/$t (log: fuzz/$t.log):"
    grep -h -A1 'panicked at' "fuzz/$t.log" | grep -v '^--' | sort | uniq -c | sort -rn | head -10
  fi
done
exit $failed
