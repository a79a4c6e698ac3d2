"""The blocking API: local runs, streaming, results, cancel, listings and audit."""

from __future__ import annotations

import threading
import time

import pytest

import orca


def test_local_run_result(o: orca.Orca) -> None:
    job = o.run("echo hello; echo oops >&2; exit 0", systems=["local"], name="greet")
    assert job.name == "greet" and job.created_by == "pytest"
    r = job.wait(timeout=30)
    assert r.ok and r.status == "completed" and r.job_id == job.id
    local = r["local"]
    assert (local.exit_code, local.stdout, local.stderr) == (0, "hello\n", "oops\n")
    assert local.ok and local.error is None and local.attempt == 1
    assert local.started_at is not None and local.completed_at is not None
    assert local.completed_at >= local.started_at
    assert len(r) == 1
    with pytest.raises(KeyError):
        r["web1"]


def test_failure_exit_code_env_and_shell(o: orca.Orca) -> None:
    r = o.run("echo $GREETING; exit 3", systems=["local"], env={"GREETING": "hi"}).wait(timeout=30)
    assert r.status == "failed" and not r.ok
    assert r["local"].exit_code == 3 and r["local"].stdout == "hi\n"
    r = o.run("echo ${BASH_VERSION:+bash}", systems=["local"], shell="bash").wait(timeout=30)
    assert r["local"].stdout == "bash\n"


def test_tags_select_systems(o: orca.Orca) -> None:
    o.add_system("here", type="local", tags=["mine"])
    r = o.run("true", tags=["mine", "local"]).wait(timeout=30)
    assert sorted(e.system for e in r.executions) == ["here", "local"]


def test_stream_order_and_terminal_states(o: orca.Orca) -> None:
    cmd = "for i in $(seq 1 300); do echo line$i; done; echo to-stderr >&2; printf tail"
    job = o.run(cmd, systems=["local"])
    events = list(job.stream())
    out = [e.text for e in events if e.kind == "output" and e.stream == "stdout"]
    assert out == [f"line{i}" for i in range(1, 301)] + ["tail"]
    assert [e.text for e in events if e.stream == "stderr"] == ["to-stderr"]
    assert all(e.system == "local" and e.job_id == job.id for e in events if e.kind == "output")
    # The execution's final state comes after its output; the job's final state comes last.
    exec_states = [e.status for e in events if e.kind == "execution"]
    assert exec_states[-1] == "completed"
    last_output = max(i for i, e in enumerate(events) if e.kind == "output")
    final_exec = max(i for i, e in enumerate(events) if e.kind == "execution")
    assert last_output < final_exec
    assert events[-1].kind == "job" and events[-1].status == "completed"


def test_stream_is_live(o: orca.Orca) -> None:
    job = o.run("echo first; sleep 2; echo second", systems=["local"])
    start = time.monotonic()
    seen: dict[str, float] = {}
    for e in job.stream():
        if e.kind == "output":
            seen[e.text or ""] = time.monotonic() - start
    assert seen["first"] < 1.5, seen
    assert seen["second"] >= 1.5, seen


def test_stream_after_the_end_replays(o: orca.Orca) -> None:
    job = o.run("echo a; echo b", systems=["local"])
    job.wait(timeout=30)
    texts = [e.text for e in job.stream() if e.kind == "output"]
    assert texts == ["a", "b"]


def test_cancel_stops_a_running_job(o: orca.Orca) -> None:
    job = o.run("sleep 30", systems=["local"])
    for e in job.stream():
        if e.kind == "execution" and e.status == "running":
            break
    start = time.monotonic()
    assert job.cancel() == 1
    r = job.wait(timeout=20)
    assert r.status == "cancelled" and r["local"].status == "cancelled"
    assert time.monotonic() - start < 10


def test_wait_timeout_leaves_the_job_running(o: orca.Orca) -> None:
    job = o.run("sleep 20", systems=["local"])
    with pytest.raises(orca.Timeout, match="still"):
        job.wait(timeout=0.3)
    assert job.refresh().status in ("pending", "running")
    job.cancel()
    assert job.wait(timeout=20).status == "cancelled"


def test_concurrent_jobs_from_threads(o: orca.Orca) -> None:
    results: list[orca.JobResult] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        try:
            for k in range(5):
                r = o.run(f"echo {n}-{k}", systems=["local"]).wait(timeout=60)
                with lock:
                    results.append(r)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 40 and all(r.ok for r in results)
    assert sorted(r["local"].stdout for r in results) == sorted(
        f"{n}-{k}\n" for n in range(8) for k in range(5)
    )
    assert len({r.job_id for r in results}) == 40


def test_blocking_calls_release_the_gil(o: orca.Orca) -> None:
    # Four threads each wait 1.5 s on a job: with the GIL held this would take 6 s.
    start = time.monotonic()
    threads = [
        threading.Thread(target=lambda: o.run("sleep 1.5", systems=["local"]).wait(timeout=30))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - start < 4.5


def test_systems_jobs_listing(o: orca.Orca) -> None:
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----"
    s = o.add_system(
        "web1",
        hostname="10.0.0.5",
        type="linux",
        username="deploy",
        private_key=key,
        host_key_policy="tofu",
        tags=["web"],
    )
    assert (s.name, s.hostname, s.port, s.type, s.username) == ("web1", "10.0.0.5", 22, "linux", "deploy")
    assert s.tags == ["web"] and s.host_key_policy == "tofu" and s.has_credential
    assert "not-a-real-key" not in repr(s)
    assert [x.name for x in o.systems()] == ["local", "web1"]
    assert [x.name for x in o.systems(tags=["web"])] == ["web1"]
    assert [x.name for x in o.systems(type="local")] == ["local"]
    assert o.system("web1").id == s.id == o.system(s.id).id
    jobs = [o.run(f"echo {i}", systems=["local"]) for i in range(3)]
    for j in jobs:
        j.wait(timeout=30)
    listed = o.jobs(limit=2)
    assert [j.id for j in listed] == [jobs[2].id, jobs[1].id]
    assert all(j.status == "completed" for j in listed)
    assert o.job(jobs[0].id).command == "echo 0"
    assert [j.id for j in o.jobs(status="completed", limit=10)] == [j.id for j in reversed(jobs)]
    o.remove_system("web1")
    with pytest.raises(orca.NotFound):
        o.system("web1")


def test_a_password_change_is_audited_once_with_the_call_context(o: orca.Orca) -> None:
    uid = o.add_user("ines", "viewer", "first-Passw0rd-1")
    o.set_password("ines", "second-Passw0rd-2")
    changes = [
        r
        for r in o.audit(limit=50, resource_type="user", action="update")
        if r.resource_id == uid and r.details["changed"].get("password") == "changed"
    ]
    assert len(changes) == 1, changes
    r = changes[0]
    assert r.actor == "pytest" and r.outcome == "success"
    assert r.details["tokens_ended"] is True and r.details["username"] == "ines"
    assert r.details["client_address"] == "local"
    assert r.details["user_agent"].startswith("orca-py/")
    assert len(r.details["request_id"]) >= 32
    everything = repr([x.details for x in o.audit(limit=100)])
    assert "Passw0rd" not in everything and "argon2" not in everything
    with pytest.raises(orca.InvalidInput):
        o.set_password("ines", "short")


def test_audit_records_every_action_under_the_actor(o: orca.Orca) -> None:
    o.add_system("db1", hostname="10.0.0.9", username="u", password="s3cret-pw-91")
    job = o.run("true", systems=["local"])
    job.wait(timeout=30)
    job2 = o.run("sleep 30", systems=["local"])
    job2.cancel()
    records = o.audit(limit=50, actor="pytest")
    actions = [(r.resource_type, r.action) for r in records]
    assert ("system", "create") in actions
    assert ("job", "submit") in actions and ("job", "cancel") in actions
    assert all(r.actor == "pytest" and r.outcome == "success" for r in records)
    submit = next(r for r in records if r.action == "submit" and r.resource_id == job.id)
    assert submit.details["command"] == "true" and submit.details["systems"] == ["local"]
    everything = repr([(r.details, r) for r in o.audit(limit=100)])
    assert "s3cret-pw-91" not in everything
    assert [r.action for r in o.audit(limit=1, action="cancel")] == ["cancel"]
