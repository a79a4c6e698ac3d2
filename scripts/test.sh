#!/usr/bin/env bash
# The test command: format check, lints, the crate-graph rule, every test, the examples.
# Run it through `bash .ci/run` on a fresh machine (that installs sshd, starts PostgreSQL...).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "--- web console (orca-http/web): npm ci, lint, typecheck, unit tests, a reproducible build"
# The build goes to a temporary directory and must equal the committed dist, which build.rs
# embeds (so the committed copy is never rewritten and cargo does not rebuild for nothing).
web_tmp=$(mktemp -d)
(
  cd orca-http/web
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --cache "${ORCA_NPM_CACHE:-$HOME/.npm}" --prefer-offline --no-audit --no-fund --loglevel=error
  npm run -s lint
  npm run -s typecheck
  npm test -s
  ORCA_DIST="$web_tmp/dist" npm run -s build
)
diff -r "$web_tmp/dist" orca-http/web/dist \
  || { echo "orca-http/web/dist is not what 'npm run build' makes: rebuild it and commit it"; exit 1; }

echo "--- cargo fmt --check"
cargo fmt --all -- --check

echo "--- orca-core depends on no I/O stack"
forbidden=$(cargo tree -p orca-core -e normal --prefix none | grep -E '^(sqlx|russh|reqwest|poem|pyo3)[ -]' || true)
if [ -n "$forbidden" ]; then
  echo "orca-core must not depend on these crates:"; echo "$forbidden"; exit 1
fi

echo "--- frontends reach the stores and connectors only through the orca crate"
for frontend in orca-http orca-py orca-cli; do
  direct=$(cargo tree -p "$frontend" -e normal --depth 1 --prefix none | grep -E '^(orca-store|orca-connectors) ' || true)
  if [ -n "$direct" ]; then
    echo "$frontend must not depend on these crates directly (use the orca crate):"; echo "$direct"; exit 1
  fi
done

echo "--- the engine's store path holds no frontend code; orca-cli uses orca-http only to serve"
wrappers=$(git grep -nE 'impl\b.*\b[A-Za-z]*Store(Ext)?\b.*\bfor\b' -- orca-http/src orca-cli/src orca-py/src || true)
if [ -n "$wrappers" ]; then
  echo "a frontend implements a store trait (wrap nothing: the facade owns audit and auth):"; echo "$wrappers"; exit 1
fi
http_users=$(git grep -l 'orca_http' -- orca-cli/src | grep -vE '^orca-cli/src/(serve|config|datadir)\.rs$' || true)
if [ -n "$http_users" ]; then
  echo "orca-cli may use orca-http only to serve (serve.rs and its [http] settings and JWT secret):"; echo "$http_users"; exit 1
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

echo "--- web console: the committed OpenAPI document and its TypeScript types match the server"
d=$(mktemp -d)
ORCA_DATA_DIR=$d/data ORCA_ADMIN_PASSWORD='types-Smoke-pw-1' "$target_dir/release/orca" serve --listen 127.0.0.1:18284 >"$d/out" 2>"$d/err" &
serve_pid=$!
for _ in $(seq 1 60); do curl -fsS http://127.0.0.1:18284/healthz >/dev/null 2>&1 && break; sleep 0.5; done
curl -fsS http://127.0.0.1:18284/api/openapi.json | python3 -m json.tool --indent 2 >orca-http/web/openapi.json
kill -TERM $serve_pid; wait $serve_pid || true
(cd orca-http/web && npm run -s gen:api >/dev/null)
git diff --exit-code -- orca-http/web/openapi.json orca-http/web/src/api/schema.ts \
  || { echo "the API changed: run the dump and 'npm run gen:api' in orca-http/web (docs/ui.md) and commit"; exit 1; }

echo "--- web console in a real browser: Playwright + Debian chromium against orca serve, axe-core"
orca_bin="$(cd "$target_dir/release" && pwd)/orca"
(cd orca-http/web && ORCA_BIN="$orca_bin" CHROMIUM=/usr/bin/chromium npx playwright test)

echo "--- OpenAPI: a client generated by openapi-python-client (warnings fail) logs in, creates a system, runs a job, reads its output"
client_venv=${ORCA_CLIENT_VENV:-$PWD/.venv-client}
[ -x "$client_venv/bin/openapi-python-client" ] || {
  python3 -m venv "$client_venv"
  "$client_venv/bin/pip" install -q --disable-pip-version-check openapi-python-client
}
d=$(mktemp -d)
ORCA_DATA_DIR=$d/data ORCA_ADMIN_PASSWORD='client-Smoke-pw-1' "$target_dir/release/orca" serve --listen 127.0.0.1:18283 >"$d/out" 2>"$d/err" &
serve_pid=$!
for _ in $(seq 1 60); do curl -fsS http://127.0.0.1:18283/healthz >/dev/null 2>&1 && break; sleep 0.5; done
curl -fsS http://127.0.0.1:18283/api/openapi.json -o "$d/openapi.json"
printf 'post_hooks: []\n' >"$d/generator.yaml"
"$client_venv/bin/openapi-python-client" generate --path "$d/openapi.json" --output-path "$d/client/orca_client" \
  --meta none --config "$d/generator.yaml" --fail-on-warning
PYTHONPATH="$d/client" "$client_venv/bin/python" orca-http/clients/python_smoke.py http://127.0.0.1:18283 'client-Smoke-pw-1' \
  || { kill -TERM $serve_pid; cat "$d/err"; exit 1; }
kill -TERM $serve_pid; wait $serve_pid || true

echo "--- quickstart example"
out=$(cargo run -q --example quickstart -- 'echo quickstart-ok' 2>/dev/null)
[ "$out" = "quickstart-ok" ] || { echo "quickstart printed: $out"; exit 1; }
if cargo run -q --example quickstart -- 'exit 3' >/dev/null 2>&1; then
  echo "quickstart must exit non-zero when the job fails"; exit 1
fi
echo "quickstart ok"
