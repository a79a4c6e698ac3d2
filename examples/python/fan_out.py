#!/usr/bin/env python3
"""Fan a command out to many systems and print a results table.

    pip install ./orca-py
    python examples/python/fan_out.py 'uname -sr; uptime'                 # on `local`
    python examples/python/fan_out.py --tags web --concurrency 20 'systemctl is-active nginx'
    python examples/python/fan_out.py --data /tmp/orca-demo --local-copies 5 'hostname; sleep 1'

Output lines stream live, prefixed with the system name; the table at the end shows each
system's status, exit code, duration and first line of output. Exits 0 only if the command
completed everywhere.
"""

from __future__ import annotations

import argparse
import sys

import orca


def table(result: orca.JobResult) -> str:
    rows = [("SYSTEM", "STATUS", "EXIT", "SECONDS", "OUTPUT")]
    for e in sorted(result.executions, key=lambda e: e.system):
        seconds = (
            f"{(e.completed_at - e.started_at).total_seconds():.2f}"
            if e.started_at and e.completed_at
            else "-"
        )
        first = (e.stdout.strip().splitlines() or [e.error or e.stderr.strip() or ""])[0]
        code = "-" if e.exit_code is None else str(e.exit_code)
        rows.append((e.system, e.status, code, seconds, first[:60]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command")
    ap.add_argument("--data", default=None, help="database path or URL (default ./orca-data)")
    ap.add_argument("--tags", nargs="*", default=None, help="run on every system with these tags")
    ap.add_argument("--systems", nargs="*", default=None, help="run on these systems")
    ap.add_argument("--local-copies", type=int, default=0,
                    help="register N extra local systems (demo-1..N, tag demo) and run on them")
    ap.add_argument("--concurrency", type=int, default=10)
    ap.add_argument("--timeout", type=int, default=60, help="seconds per system")
    ap.add_argument("--quiet", action="store_true", help="only print the table")
    args = ap.parse_args()

    with orca.Orca.open(args.data, actor="fan-out example") as o:
        tags = args.tags
        for i in range(1, args.local_copies + 1):
            try:
                o.add_system(f"demo-{i}", type="local", tags=["demo"])
            except orca.AlreadyExists:
                pass
        if args.local_copies:
            tags = (tags or []) + ["demo"]
        systems = args.systems if args.systems is not None or tags else ["local"]
        job = o.run(args.command, systems=systems, tags=tags,
                    concurrency=args.concurrency, timeout=args.timeout)
        print(f"job {job.id}: {job.command!r}", file=sys.stderr)
        try:
            for ev in job.stream():
                if ev.kind == "output" and not args.quiet:
                    out = sys.stdout if ev.stream == "stdout" else sys.stderr
                    print(f"[{ev.system}] {ev.text}", file=out, flush=True)
            result = job.wait()
        except KeyboardInterrupt:
            print("interrupted: cancelling the job", file=sys.stderr)
            job.cancel()
            result = job.wait(timeout=30)
        print()
        print(table(result))
        print(f"\njob {result.job_id}: {result.status}")
        return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
