#!/usr/bin/env python3
"""Benchmark of the binding's overhead: N local `true` executions submitted and awaited from
Python, against the same through the Rust API, in the same run (alternating, best of R).

    cargo build --release -p orca-py --example bench_local
    python examples/python/bench_overhead.py --rust target/release/examples/bench_local

Both sides open a fresh SQLite database with the engine in-process, submit N jobs on `local`,
then wait for each and read its result. Goal: Python at most 10% slower.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time

import orca


def python_run(n: int) -> float:
    with tempfile.TemporaryDirectory() as d:
        with orca.Orca.open(f"{d}/orca.db", actor="bench") as o:
            start = time.perf_counter()
            jobs = [o.run("true", systems=["local"]) for _ in range(n)]
            ok = sum(1 for j in jobs if j.wait().ok)
            secs = time.perf_counter() - start
    assert ok == n, f"only {ok} of {n} completed"
    return secs


def rust_run(binary: str, n: int) -> float:
    out = subprocess.run([binary, str(n)], capture_output=True, text=True, check=True).stdout
    r = json.loads(out)
    assert r["completed"] == n, r
    return float(r["seconds"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rust", required=True, help="path of the bench_local example binary")
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("-r", "--rounds", type=int, default=3)
    args = ap.parse_args()
    py, rs = [], []
    for _ in range(args.rounds):
        rs.append(rust_run(args.rust, args.n))
        py.append(python_run(args.n))
    best_py, best_rs = min(py), min(rs)
    print(f"{args.n} local `true` executions, best of {args.rounds}:")
    print(f"  Rust API:   {best_rs:.3f} s  ({args.n / best_rs:.0f}/s)  all: {', '.join(f'{x:.3f}' for x in rs)}")
    print(f"  Python API: {best_py:.3f} s  ({args.n / best_py:.0f}/s)  all: {', '.join(f'{x:.3f}' for x in py)}")
    print(f"  overhead:   {100 * (best_py / best_rs - 1):+.1f}%")


if __name__ == "__main__":
    main()
