#!/usr/bin/env python3
"""Parse wrk --latency output (stdin) into `rps,p50_ms,p99_ms,non2xx,socket_errors`, or with
`--summary results.csv` print a Markdown table of medians per target (used by run.sh)."""
import csv
import re
import statistics
import sys

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError(f"cannot read the latency {text!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


def parse(out):
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    if not (rps and p50 and p99):
        raise SystemExit("parse_wrk: not wrk --latency output:\n" + out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = sum(int(x) for x in sock.groups()) if sock else 0
    return f"{float(rps.group(1)):.0f},{ms(p50.group(1)):.3f},{ms(p99.group(1)):.3f}," \
           f"{int(non2xx.group(1)) if non2xx else 0},{errors}"


def summary(path):
    rows = list(csv.DictReader(open(path)))
    order = []
    for r in rows:
        if r["target"] not in order:
            order.append(r["target"])
    med = {}
    for t in order:
        rs = [r for r in rows if r["target"] == t]
        med[t] = (
            statistics.median(float(r["rps"]) for r in rs),
            statistics.median(float(r["p50_ms"]) for r in rs),
            statistics.median(float(r["p99_ms"]) for r in rs),
            [float(r["rps"]) for r in rs],
            statistics.median(float(r["load1_before"]) for r in rs),
        )
    ceiling = med.get("hello", (None,))[0]
    print("| target | req/s (median) | runs (req/s) | p50 ms | p99 ms | vs hello | load (1 min) |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for t in order:
        rps, p50, p99, runs, load = med[t]
        ratio = f"{100 * rps / ceiling:.0f}%" if ceiling else "-"
        runs_s = ", ".join(f"{x:.0f}" for x in runs)
        print(f"| {t} | {rps:,.0f} | {runs_s} | {p50:.2f} | {p99:.2f} | {ratio} | {load:.2f} |")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--summary":
        summary(sys.argv[2])
    else:
        print(parse(sys.stdin.read()))
