"""Bad input gives a clear Python exception (never a crash), one class per error kind."""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path

import pytest

import orca

KINDS = {
    "NotFound": "not_found",
    "AlreadyExists": "already_exists",
    "Conflict": "conflict",
    "LeaseLost": "lease_lost",
    "InvalidInput": "invalid_input",
    "PermissionDenied": "permission_denied",
    "Unauthenticated": "unauthenticated",
    "Timeout": "timeout",
    "ConnectionFailed": "connection_failed",
    "AuthFailed": "auth_failed",
    "HostKeyRejected": "host_key_rejected",
    "Unsupported": "unsupported",
    "Crypto": "crypto",
    "Incompatible": "incompatible",
    "Storage": "storage",
    "Unexpected": "unexpected",
}


def test_one_class_per_kind_under_orca_error() -> None:
    for name, code in KINDS.items():
        cls = getattr(orca, name)
        assert issubclass(cls, orca.OrcaError) and cls is not orca.OrcaError
        assert cls.kind == code and cls.__module__ == "orca"
    assert issubclass(orca.OrcaError, Exception)


def test_bad_job_requests(o: orca.Orca) -> None:
    cases: list[tuple[type[BaseException], str, dict[str, object]]] = [
        (orca.InvalidInput, "empty", {"command": "", "systems": ["local"]}),
        (orca.InvalidInput, "no targets", {"command": "true"}),
        (orca.NotFound, "'nope' not found", {"command": "true", "systems": ["nope"]}),
        (orca.InvalidInput, "unknown shell", {"command": "true", "systems": ["local"], "shell": "zsh"}),
        (orca.InvalidInput, "concurrency", {"command": "true", "systems": ["local"], "concurrency": 0}),
        (orca.InvalidInput, "environment variable", {"command": "true", "systems": ["local"], "env": {"1X": "y"}}),
    ]
    for cls, msg, kwargs in cases:
        with pytest.raises(cls, match=msg):
            o.run(**kwargs)  # type: ignore[arg-type]
        assert issubclass(cls, orca.OrcaError)


def test_wrong_types_and_unknown_keywords(o: orca.Orca) -> None:
    with pytest.raises(TypeError):
        o.run("true", systems="local")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        o.run(123, systems=["local"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bogus"):
        o.run("true", systems=["local"], bogus=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        o.run("true", ["local"])  # type: ignore[misc]
    with pytest.raises(OverflowError):
        o.run("true", systems=["local"], concurrency=-1)
    with pytest.raises(TypeError):
        o.add_system("x", port="22")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        o.jobs(limit="ten")  # type: ignore[arg-type]


def test_bad_systems(o: orca.Orca) -> None:
    o.add_system("web1", hostname="h", username="u", password="pw")
    with pytest.raises(orca.AlreadyExists):
        o.add_system("web1", hostname="h2", username="u")
    with pytest.raises(orca.InvalidInput, match="unknown system type"):
        o.add_system("x", type="solaris", username="u")
    with pytest.raises(orca.InvalidInput, match="username"):
        o.add_system("x", hostname="h")
    with pytest.raises(orca.InvalidInput, match="not both"):
        o.add_system("x", username="u", password="p", private_key="k")
    with pytest.raises(orca.InvalidInput, match="host key policy"):
        o.add_system("x", username="u", host_key_policy="trusting")
    with pytest.raises(orca.InvalidInput, match="invalid"):
        o.add_system("bad name!", username="u")


def test_bad_ids_pages_and_timeouts(o: orca.Orca) -> None:
    with pytest.raises(orca.InvalidInput, match="not a valid"):
        o.job("not-a-uuid")
    with pytest.raises(orca.NotFound):
        o.job(str(uuid.uuid4()))
    with pytest.raises(orca.InvalidInput, match="limit"):
        o.jobs(limit=0)
    with pytest.raises(orca.InvalidInput, match="limit"):
        o.audit(limit=5000)
    with pytest.raises(orca.InvalidInput, match="status"):
        o.jobs(status="done")
    job = o.run("true", systems=["local"])
    with pytest.raises(orca.InvalidInput, match="timeout"):
        job.wait(timeout=-1)
    job.wait(timeout=30)


def test_closed_orca(db: str) -> None:
    o = orca.Orca.open(db, actor="closer")
    job = o.run("true", systems=["local"])
    job.wait(timeout=30)
    o.close()
    o.close()  # twice is fine
    assert o.closed and "closed" in repr(o)
    for call in (o.systems, lambda: o.run("true", systems=["local"]), job.wait, job.stream, job.cancel):
        with pytest.raises(orca.Conflict, match="closed"):
            call()


def test_context_manager_closes(db: str) -> None:
    with orca.Orca.open(db) as o:
        assert o.run("true", systems=["local"]).wait(timeout=30).ok
        assert o.actor == "python" and o.engine and o.location.startswith("sqlite://")
    assert o.closed
    # The engine lock is released: the database opens again as an engine.
    with orca.Orca.open(db) as again:
        assert len(again.jobs()) == 1


def test_bad_locations_and_actor(tmp_path: Path) -> None:
    with pytest.raises(orca.InvalidInput, match="scheme"):
        orca.Orca.open("mysql://db/orca")
    with pytest.raises(orca.InvalidInput, match="actor"):
        orca.Orca.open(str(tmp_path / "a.db"), actor=" ")
    with pytest.raises(orca.InvalidInput, match="PostgreSQL only"):
        orca.Orca.open(str(tmp_path / "b.db"), schema="x")
    with pytest.raises(TypeError):
        orca.Orca.open(42)  # type: ignore[arg-type]


def test_database_that_is_not_orcas(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    con.commit()
    con.close()
    with pytest.raises(orca.Incompatible):
        orca.Orca.open(str(other))
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not a database at all\n" * 200)
    with pytest.raises(orca.Incompatible):
        orca.Orca.open(text)
    assert not (tmp_path / "keys.json").exists()


def test_one_engine_per_database(o: orca.Orca, db: str) -> None:
    with pytest.raises(orca.Incompatible, match="engine"):
        orca.Orca.open(db)
    # A client next to the engine is fine.
    with orca.Orca.open(db, engine=False, actor="client") as c:
        assert [s.name for s in c.systems()] == ["local"]


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    db = str(tmp_path / "orca.db")
    orca.Orca.open(db).close()
    keys = tmp_path / "keys.json"
    assert keys.stat().st_mode & 0o777 == 0o600
    os.chmod(keys, 0o644)
    with pytest.raises(orca.PermissionDenied, match="chmod 600"):
        orca.Orca.open(db)


def test_client_without_key_file(tmp_path: Path) -> None:
    db = str(tmp_path / "orca.db")
    orca.Orca.open(db).close()
    (tmp_path / "keys.json").unlink()
    with pytest.raises(orca.NotFound, match="key"):
        orca.Orca.open(db, engine=False)
