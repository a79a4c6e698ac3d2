#!/usr/bin/env python3
"""asyncio: run several jobs at once, follow their output live, and gather the results.

    pip install ./orca-py
    python examples/python/async_fan_out.py               # uses ./orca-data
    python examples/python/async_fan_out.py /tmp/demo.db

Each job streams with `async for`; the event loop stays free (a heartbeat task keeps ticking
while the jobs run).
"""

from __future__ import annotations

import asyncio
import sys
import time

import orca

COMMANDS = {
    "kernel": "uname -sr",
    "slow": "for i in 1 2 3; do echo step $i; sleep 0.5; done",
    "disk": "df -h / | tail -1",
    "fails": "echo about to fail >&2; exit 3",
}


async def follow(o: orca.AsyncOrca, label: str, command: str) -> orca.JobResult:
    job = await o.run(command, systems=["local"], name=label, timeout=30)
    async for ev in job.stream():
        if ev.kind == "output":
            print(f"{label:>7} | {ev.stream}: {ev.text}")
        elif ev.kind == "job":
            print(f"{label:>7} | job {ev.status}")
    return await job.wait()


async def heartbeat(stop: asyncio.Event) -> int:
    ticks = 0
    while not stop.is_set():
        await asyncio.sleep(0.1)
        ticks += 1
    return ticks


async def main(path: str | None) -> int:
    async with await orca.AsyncOrca.open(path, actor="async example") as o:
        stop = asyncio.Event()
        beat = asyncio.ensure_future(heartbeat(stop))
        start = time.monotonic()
        results = await asyncio.gather(*(follow(o, k, c) for k, c in COMMANDS.items()))
        stop.set()
        ticks = await beat
        print(f"\n{len(results)} jobs in {time.monotonic() - start:.2f}s "
              f"(event loop ticked {ticks} times meanwhile)")
        for label, r in zip(COMMANDS, results):
            e = r.executions[0]
            print(f"{label:>7}: {r.status:<9} exit={e.exit_code}")
        recent = await o.audit(limit=len(COMMANDS), action="submit")
        print("audited:", ", ".join(f"{a.actor} {a.action} {a.details['name']}" for a in recent))
        return 0 if [r.status for r in results].count("failed") == 1 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else None)))
