"""The asyncio API: the same operations as test_sync, as awaitables."""

from __future__ import annotations

import asyncio
import time

import pytest

import orca

pytestmark = pytest.mark.asyncio


async def test_local_run_result(ao: orca.AsyncOrca) -> None:
    job = await ao.run("echo hello; echo oops >&2", systems=["local"], name="greet")
    assert isinstance(job, orca.AsyncJob) and job.name == "greet"
    r = await job.wait(timeout=30)
    assert r.ok and r["local"].stdout == "hello\n" and r["local"].stderr == "oops\n"


async def test_failure_exit_code(ao: orca.AsyncOrca) -> None:
    r = await (await ao.run("exit 4", systems=["local"])).wait(timeout=30)
    assert r.status == "failed" and r["local"].exit_code == 4


async def test_stream_order_and_terminal_states(ao: orca.AsyncOrca) -> None:
    job = await ao.run("for i in $(seq 1 300); do echo line$i; done", systems=["local"])
    events = [e async for e in job.stream()]
    out = [e.text for e in events if e.kind == "output"]
    assert out == [f"line{i}" for i in range(1, 301)]
    last_output = max(i for i, e in enumerate(events) if e.kind == "output")
    final_exec = max(i for i, e in enumerate(events) if e.kind == "execution")
    assert last_output < final_exec and events[final_exec].status == "completed"
    assert events[-1].kind == "job" and events[-1].status == "completed"


async def test_stream_is_live_and_does_not_block_the_loop(ao: orca.AsyncOrca) -> None:
    job = await ao.run("echo first; sleep 2; echo second", systems=["local"])
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.05)
            ticks += 1

    t = asyncio.ensure_future(ticker())
    start = time.monotonic()
    seen = {}
    async for e in job.stream():
        if e.kind == "output":
            seen[e.text] = time.monotonic() - start
    t.cancel()
    assert seen["first"] < 1.5 and seen["second"] >= 1.5, seen
    assert ticks > 20, "the event loop was blocked while streaming"


async def test_cancel_stops_a_running_job(ao: orca.AsyncOrca) -> None:
    job = await ao.run("sleep 30", systems=["local"])
    async for e in job.stream():
        if e.kind == "execution" and e.status == "running":
            break
    assert await job.cancel() == 1
    r = await job.wait(timeout=20)
    assert r.status == "cancelled"


async def test_wait_timeout(ao: orca.AsyncOrca) -> None:
    job = await ao.run("sleep 20", systems=["local"])
    with pytest.raises(orca.Timeout):
        await job.wait(timeout=0.3)
    await job.cancel()
    assert (await job.wait(timeout=20)).status == "cancelled"


async def test_concurrent_jobs_with_gather(ao: orca.AsyncOrca) -> None:
    async def one(i: int) -> orca.JobResult:
        job = await ao.run(f"sleep 1; echo {i}", systems=["local"])
        return await job.wait(timeout=60)

    start = time.monotonic()
    results = await asyncio.gather(*(one(i) for i in range(6)))
    assert sorted(r["local"].stdout for r in results) == sorted(f"{i}\n" for i in range(6))
    assert time.monotonic() - start < 5


async def test_systems_jobs_audit(ao: orca.AsyncOrca) -> None:
    s = await ao.add_system("web1", hostname="10.0.0.5", username="deploy", password="pw-123456", tags=["web"])
    assert s.type == "linux" and s.has_credential
    assert [x.name for x in await ao.systems()] == ["local", "web1"]
    assert (await ao.system("web1")).id == s.id
    job = await ao.run("true", systems=["local"])
    await job.wait(timeout=30)
    assert [j.id for j in await ao.jobs(limit=5)] == [job.id]
    assert (await ao.job(job.id)).status == "completed"
    assert (await job.refresh()).status == "completed"
    records = await ao.audit(limit=10)
    assert {("system", "create"), ("job", "submit")} <= {(r.resource_type, r.action) for r in records}
    assert all(r.actor == "pytest-async" for r in records)
    await ao.remove_system("web1")
    with pytest.raises(orca.NotFound):
        await ao.system("web1")


async def test_errors_and_close(ao: orca.AsyncOrca) -> None:
    with pytest.raises(orca.InvalidInput, match="empty"):
        await ao.run("  ", systems=["local"])
    with pytest.raises(orca.NotFound):
        await ao.run("true", systems=["nope"])
    with pytest.raises(TypeError):
        await ao.run("true", systems="local")  # type: ignore[arg-type]
    await ao.close()
    assert ao.closed
    with pytest.raises(orca.Conflict, match="closed"):
        await ao.systems()


async def test_context_manager(db: str) -> None:
    async with await orca.AsyncOrca.open(db, actor="ctx") as a:
        assert (await (await a.run("true", systems=["local"])).wait(timeout=30)).ok
    assert a.closed
