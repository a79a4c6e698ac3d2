#!/usr/bin/env bash
# WinRM benchmark: Orca's WinRM connector and pywinrm's run_cmd against the WinRM test server
# on loopback (NTLM with message encryption), in one run. Installs pywinrm in a venv under the
# target directory. Extra arguments go to the benchmark (see benches/winrm/main.rs), e.g.
#   bash benches/winrm/run.sh --systems 100 --commands 10 --reps 5
set -euo pipefail
cd "$(dirname "$0")/../.."
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
venv="$target_dir/winrm-bench-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import winrm' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check 'pywinrm>=0.5'
fi
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
echo "rustc: $(rustc --version)"
echo "python: $("$venv/bin/python" --version), pywinrm $("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("pywinrm"))')"
cargo bench -p orca-benches --bench winrm -- --python "$venv/bin/python" "$@"
