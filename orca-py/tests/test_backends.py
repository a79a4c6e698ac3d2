"""Real peers: SSH runs against a real sshd, and Orca on PostgreSQL.

Without sshd/root or without PostgreSQL these tests say so loudly and skip, unless
ORCA_TEST_REQUIRE_ALL=1, where they fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from typing import Iterator

import pytest

import orca
from conftest import missing_peer
from sshd import PASSWORD, USER, Sshd, unavailable


@pytest.fixture(scope="module")
def sshd() -> Iterator[Sshd]:
    why = unavailable()
    if why:
        missing_peer(f"no real sshd: {why}")
    s = Sshd()
    try:
        yield s
    finally:
        s.stop()


def test_ssh_run_with_password_and_tofu(o: orca.Orca, sshd: Sshd) -> None:
    o.add_system(
        "ssh1", hostname="127.0.0.1", port=sshd.port, username=USER, password=PASSWORD,
        host_key_policy="tofu", tags=["ssh"],
    )
    job = o.run("id -un; echo to-stderr >&2; exit 2", tags=["ssh"])
    lines = [(e.system, e.stream, e.text) for e in job.stream() if e.kind == "output"]
    assert ("ssh1", "stdout", USER) in lines and ("ssh1", "stderr", "to-stderr") in lines
    r = job.wait(timeout=60)
    assert r.status == "failed" and r["ssh1"].exit_code == 2 and r["ssh1"].stdout == f"{USER}\n"
    # The key pinned on first use is kept: a second run works the same.
    assert o.run("true", systems=["ssh1"]).wait(timeout=60).ok


def test_ssh_private_key_and_fan_out_with_local(o: orca.Orca, sshd: Sshd) -> None:
    o.add_system(
        "ssh-key", hostname="127.0.0.1", port=sshd.port, username=USER,
        private_key=sshd.client_key(), host_key_policy="tofu", tags=["fleet"],
    )
    o.add_system("here", type="local", tags=["fleet"])
    r = o.run("echo $((6 * 7))", tags=["fleet"], concurrency=2).wait(timeout=60)
    assert r.ok and {e.system: e.stdout for e in r.executions} == {"ssh-key": "42\n", "here": "42\n"}


def test_ssh_unknown_host_key_is_rejected_under_strict(o: orca.Orca, sshd: Sshd) -> None:
    o.add_system("strict1", hostname="127.0.0.1", port=sshd.port, username=USER, password=PASSWORD)
    r = o.run("echo should-not-run", systems=["strict1"]).wait(timeout=60)
    e = r["strict1"]
    assert r.status == "failed" and e.exit_code is None and e.stdout == ""
    assert e.error and "host key" in e.error.lower()
    assert PASSWORD not in (e.error or "")


def test_ssh_wrong_password_fails_the_execution(o: orca.Orca, sshd: Sshd) -> None:
    o.add_system(
        "badpw", hostname="127.0.0.1", port=sshd.port, username=USER, password="wrong-pw",
        host_key_policy="tofu",
    )
    r = o.run("true", systems=["badpw"]).wait(timeout=60)
    assert r.status == "failed" and r["badpw"].error
    assert "wrong-pw" not in r["badpw"].error


def postgres_url() -> str:
    return os.environ.get("ORCA_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_schema(tmp_path) -> Iterator[str]:
    # Named like the Rust tests' schemas, so their sweeper removes any left behind.
    schema = f"orca_test_{int(time.time())}_{uuid.uuid4().hex[:12]}"
    yield schema
    if shutil.which("psql"):
        subprocess.run(
            ["psql", postgres_url(), "-q", "-c", f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'],
            capture_output=True,
        )


def test_postgres_run_and_second_client(pg_schema: str, tmp_path) -> None:
    keys = tmp_path / "keys.json"
    try:
        o = orca.Orca.open(postgres_url(), schema=pg_schema, keys=keys, actor="pg-test")
    except orca.ConnectionFailed as e:
        missing_peer(f"no PostgreSQL at {postgres_url()}: {e}")
    with o:
        assert o.location.startswith("postgres://")
        job = o.run("echo on postgres", systems=["local"])
        lines = [e.text for e in job.stream() if e.kind == "output"]
        assert lines == ["on postgres"]
        assert job.wait(timeout=60).ok
        with orca.Orca.open(postgres_url(), schema=pg_schema, keys=keys, engine=False, actor="pg-client") as c:
            assert c.job(job.id).result()["local"].stdout == "on postgres\n"
            j2 = c.run("echo via client", systems=["local"])
            assert j2.wait(timeout=60)["local"].stdout == "via client\n"
