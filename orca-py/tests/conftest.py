"""Fixtures for the orca binding tests.

Every test gets its own database in a temporary directory. Tests whose real peer (sshd,
PostgreSQL) is missing say so loudly and skip, but fail when ORCA_TEST_REQUIRE_ALL=1 (CI).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Iterator

import pytest
import pytest_asyncio

import orca


def require_all() -> bool:
    return os.environ.get("ORCA_TEST_REQUIRE_ALL") == "1"


def missing_peer(why: str) -> None:
    """Skip loudly, or fail under ORCA_TEST_REQUIRE_ALL=1."""
    if require_all():
        pytest.fail(f"real peer unavailable and ORCA_TEST_REQUIRE_ALL=1: {why}")
    print(f"\n*** SKIPPED: {why} ***", file=sys.stderr)
    pytest.skip(why)


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A fresh SQLite database path (its key file goes beside it)."""
    return str(tmp_path / "orca.db")


@pytest.fixture
def o(db: str) -> Iterator[orca.Orca]:
    """An Orca with its engine running in this process."""
    inst = orca.Orca.open(db, actor="pytest")
    try:
        yield inst
    finally:
        inst.close()


@pytest_asyncio.fixture
async def ao(db: str):
    """An AsyncOrca with its engine running in this process."""
    inst = await orca.AsyncOrca.open(db, actor="pytest-async")
    try:
        yield inst
    finally:
        await inst.close()


def run_python(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run `code` in another Python process (the same interpreter and orca install)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
