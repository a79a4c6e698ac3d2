"""Other processes on the same SQLite file, and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import orca
from conftest import run_python


def test_a_job_from_python_is_read_back_by_another_process(o: orca.Orca, db: str) -> None:
    job = o.run("echo written by python; echo on stderr >&2", systems=["local"], name="cross")
    assert job.wait(timeout=30).ok
    p = run_python(
        """
        import json, sys, orca
        with orca.Orca.open(sys.argv[1], engine=False, actor="reader") as c:
            job = c.job(sys.argv[2])
            r = job.result()
            audit = [(a.actor, a.action) for a in c.audit(limit=20)]
            print(json.dumps({"name": job.name, "status": r.status, "by": job.created_by,
                              "stdout": r["local"].stdout, "stderr": r["local"].stderr,
                              "audit": audit}))
        """,
        db,
        job.id,
    )
    assert p.returncode == 0, p.stderr
    seen = json.loads(p.stdout)
    assert seen["name"] == "cross" and seen["status"] == "completed" and seen["by"] == "pytest"
    assert (seen["stdout"], seen["stderr"]) == ("written by python\n", "on stderr\n")
    assert ["pytest", "submit"] in seen["audit"]


def test_a_client_process_submits_and_this_engine_runs_it(o: orca.Orca, db: str) -> None:
    p = run_python(
        """
        import json, sys, orca
        with orca.Orca.open(sys.argv[1], engine=False, actor="client") as c:
            job = c.run("echo from the client", systems=["local"])
            events = [e.text for e in job.stream() if e.kind == "output"]
            r = job.wait(timeout=30)
            print(json.dumps({"id": job.id, "status": r.status, "events": events}))
        """,
        db,
    )
    assert p.returncode == 0, p.stderr
    seen = json.loads(p.stdout)
    assert seen["status"] == "completed" and seen["events"] == ["from the client"]
    job = o.job(seen["id"])
    assert job.created_by == "client"
    assert job.result()["local"].stdout == "from the client\n"
    assert any(a.actor == "client" and a.action == "submit" for a in o.audit())


def test_ctrl_c_cancels_the_wait_not_the_job(tmp_path) -> None:
    script = textwrap.dedent(
        """
        import sys, time, orca
        o = orca.Orca.open(sys.argv[1], actor="ctrl-c")
        job = o.run("sleep 30", systems=["local"])
        for e in job.stream():
            if e.kind == "execution" and e.status == "running":
                break
        print("waiting", flush=True)
        start = time.monotonic()
        try:
            job.wait()
            print("not interrupted", flush=True)
        except KeyboardInterrupt:
            print(f"interrupted {time.monotonic() - start:.2f}", flush=True)
        print("status", job.refresh().status, flush=True)
        job.cancel()
        print("final", job.wait(timeout=20).status, flush=True)
        o.close()
        """
    )
    p = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "orca.db")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "waiting"
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    lines = out.splitlines()
    assert lines[0].startswith("interrupted"), (out, err)
    assert float(lines[0].split()[1]) < 5
    assert lines[1] == "status running"
    assert lines[2] == "final cancelled"
    assert p.returncode == 0, err


def test_engine_stops_cleanly_at_interpreter_exit(tmp_path) -> None:
    db = str(tmp_path / "orca.db")
    p = run_python(
        """
        import sys, orca
        o = orca.Orca.open(sys.argv[1])
        job = o.run("echo done", systems=["local"])
        job.wait(timeout=30)
        print(job.id)
        # no close(): the atexit hook stops the engine and releases the database
        """,
        db,
    )
    assert p.returncode == 0, p.stderr
    with orca.Orca.open(db) as again:
        assert again.job(p.stdout.strip()).status == "completed"
    assert os.path.exists(db)
