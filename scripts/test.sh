#!/usr/bin/env bash
# The test command: format check, lints, the crate-graph rule, every test, the examples.
# Run it through `bash .ci/run` on a fresh machine (that installs sshd, starts PostgreSQL...).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "--- cargo fmt --check"
cargo fmt --all -- --check

echo "--- orca-core depends on no I/O stack"
forbidden=$(cargo tree -p orca-core -e normal --prefix none | grep -E '^(sqlx|russh|reqwest|poem|pyo3)[ -]' || true)
if [ -n "$forbidden" ]; then
  echo "orca-core must not depend on these crates:"; echo "$forbidden"; exit 1
fi

echo "--- cargo clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings

echo "--- cargo test"
cargo test --workspace --all-features

target_dir=${CARGO_TARGET_DIR:-target}
venv=${ORCA_TEST_VENV:-.venv}

echo "--- WinRM test server cross-checked with pywinrm and pypsrp"
if [ -x "$venv/bin/python" ]; then
  cargo build -q -p orca-connectors --features winrm-testserver --bin winrm-testserver
  "$venv/bin/python" orca-connectors/tests/pywinrm/crosscheck.py "$target_dir/debug/winrm-testserver"
elif [ "${ORCA_TEST_REQUIRE_ALL:-}" = 1 ]; then
  echo "no Python venv with pywinrm at $venv (run bash .ci/run)"; exit 1
else
  echo "*** SKIPPED: no Python venv with pywinrm at $venv ***"
fi

echo "--- chaos harness (short): 3 nodes on PostgreSQL, SIGKILL a node every 10 s"
cargo run -q --example chaos -- --database "${ORCA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}" \
  --nodes 3 --executions 300 --kill-every 10 --terminate-every 7

echo "--- schemathesis against the OpenAPI document (admin and viewer tokens)"
MAX_TIME=${SCHEMATHESIS_MAX_TIME:-90} bash orca-http/schemathesis/run.sh

echo "--- Python bindings: install into a venv, check the stubs, run pytest"
py_venv=${ORCA_PY_VENV:-$PWD/.venv-py}
[ -x "$py_venv/bin/python" ] || python3 -m venv "$py_venv"
"$py_venv/bin/pip" install -q --disable-pip-version-check './orca-py[test]'
(cd "$(mktemp -d)" && "$py_venv/bin/python" -m mypy.stubtest orca)
"$py_venv/bin/python" -m pytest -q -p no:cacheprovider orca-py/tests

echo "--- the README's main command: cargo run --release -- serve"
# Build first (a cold release build can take longer than any start-up wait), then time the start.
cargo build -q --release --bins   # the same selection as the `cargo run` below
d=$(mktemp -d)
ORCA_DATA_DIR=$d/data ORCA_ADMIN_PASSWORD='readme-Smoke-pw-1' cargo run -q --release -- serve --listen 127.0.0.1:18282 >"$d/out" 2>"$d/err" &
serve_pid=$!
for _ in $(seq 1 120); do grep -q "is ready at" "$d/out" 2>/dev/null && break; kill -0 $serve_pid 2>/dev/null || break; sleep 1; done
curl -fsS http://127.0.0.1:18282/healthz >/dev/null || { cat "$d/out" "$d/err"; exit 1; }
kill -TERM $serve_pid; wait $serve_pid || true
pkill -TERM -f "orca serve --listen 127.0.0.1:18282" 2>/dev/null || true
echo "serve ok"

echo "--- quickstart example"
out=$(cargo run -q --example quickstart -- 'echo quickstart-ok' 2>/dev/null)
[ "$out" = "quickstart-ok" ] || { echo "quickstart printed: $out"; exit 1; }
if cargo run -q --example quickstart -- 'exit 3' >/dev/null 2>&1; then
  echo "quickstart must exit non-zero when the job fails"; exit 1
fi
echo "quickstart ok"
