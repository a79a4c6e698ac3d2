#!/usr/bin/env python3
"""Medians of benches/fanout/run.sh results as Markdown.

usage: summarize.py RESULTS_CSV SSHD_CPU_PER_CONNECTION_S CORES FORKS
"""

import csv
import statistics
import sys
from collections import defaultdict

TOOLS = ["orca", "parallel-ssh", "ansible", "pssh"]


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def med(rows, key):
    vals = [num(r[key]) for r in rows if num(r[key]) is not None]
    return statistics.median(vals) if vals else None


def fmt(v, digits=2):
    return "-" if v is None else f"{v:.{digits}f}"


def main():
    path, per_conn, cores, forks = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    groups = defaultdict(list)
    with open(path) as f:
        for r in csv.DictReader(f):
            groups[(r["tool"], int(r["n"]))].append(r)
    ns = sorted({n for (t, n) in groups if not t.startswith("calibration")})
    reps = max((len(v) for (t, _), v in groups.items() if not t.startswith("calibration")),
               default=0)
    defaults = [r for (t, _), v in groups.items() if t == "calibration-openssh-defaults" for r in v]
    print(f"sshd CPU per connection, measured with sequential OpenSSH `ssh host true` using the "
          f"algorithms Orca negotiates (curve25519-sha256, aes128-gcm, ssh-ed25519): "
          f"{per_conn * 1000:.2f} ms", end="")
    if defaults:
        d = float(defaults[0]["sshd_cpu_s"]) / float(defaults[0]["n"])
        print(f" (OpenSSH's default algorithms: {d * 1000:.2f} ms)", end="")
    print(f". floor(N) = N x {per_conn * 1000:.2f} ms / {cores} cores. Concurrency {forks} for "
          f"every tool; medians of {reps} runs; failures summed over all runs.")
    print()
    print("| N | tool | wall s | wall / floor | client CPU s | client ms/host | sshd CPU s "
          "| sshd ms/host | others' CPU % | failures |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in ns:
        floor = n * per_conn / cores
        print(f"| {n} | *sshd floor* | {floor:.2f} | 1.00 | | | {n * per_conn:.2f} | "
              f"{per_conn * 1000:.2f} | | |")
        for t in TOOLS:
            rows = groups.get((t, n))
            if not rows:
                continue
            wall, cli, sshd = (med(rows, k) for k in ("wall_s", "client_cpu_s", "sshd_cpu_s"))
            # CPU used by other processes during the run, as a share of the machine.
            other = statistics.median(
                float(r["other_cpu_s"]) * 100 / (float(r["wall_s"]) * cores) for r in rows)
            fails = sum(int(r["failed"]) for r in rows)
            print(f"| {n} | {t} | {fmt(wall)} | {fmt(wall / floor if wall else None)} | "
                  f"{fmt(cli)} | {fmt(cli * 1000 / n if cli is not None else None)} | "
                  f"{fmt(sshd)} | {fmt(sshd * 1000 / n if sshd is not None else None)} | "
                  f"{fmt(other, 0)} | {fails} |")
    print()
    print("Orca in detail (`ssh_fanout`): *fan-out* is submit to last result inside the process "
          "(the process wall above adds start-up, SQLite and registering the systems and their "
          "host keys: *setup*); *warm* is a second run of the same job over the pooled "
          "connections (its sshd CPU is the `--warm` process's minus a fresh-only process's). "
          "Memory per idle pooled connection: RSS growth over the fresh run minus RSS growth "
          "over the warm run (same engine work, no new connections), divided by the open "
          "connections; in brackets the plain RSS growth over the fresh run per connection, an "
          "upper bound.")
    print()
    print("| N | fan-out s | fan-out / floor | setup s | warm s | warm client ms/host "
          "| warm sshd ms/host | KiB per idle connection | peak RSS MiB | failures (--warm runs) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n in ns:
        rows = groups.get(("orca", n), [])
        wrows = groups.get(("orca-warm", n), [])
        if not rows and not wrows:
            continue
        floor = n * per_conn / cores
        inner = med(rows, "inner_wall_s") if rows else None
        setup = med(rows, "setup_s") if rows else None
        warm = med(wrows, "warm_wall_s")
        wcpu = med(wrows, "warm_client_cpu_s")
        wsshd = None
        if rows and wrows:
            wsshd = (med(wrows, "sshd_cpu_s") - med(rows, "sshd_cpu_s")) * 1000 / n
        perconn = med(wrows, "rss_per_idle_conn_kib")
        upper = med(wrows, "rss_per_idle_conn_upper_kib")
        peak = med(wrows, "peak_rss_kib")
        wfails = sum(int(r["failed"]) for r in wrows)
        print(f"| {n} | {fmt(inner)} | {fmt(inner / floor if inner else None)} | {fmt(setup)} | "
              f"{fmt(warm, 3)} | {fmt(wcpu * 1000 / n if wcpu is not None else None, 3)} | "
              f"{fmt(wsshd)} | {fmt(perconn, 1)} ({fmt(upper, 1)}) | "
              f"{fmt(peak / 1024 if peak else None, 1)} | {wfails} |")


if __name__ == "__main__":
    main()
