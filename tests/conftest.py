"""Fixtures: a fresh SQLite file per test, a store on it, and an owner for spawned processes."""

import pytest
from helpers import ProcessOwner
from queuectl_core.store import SqliteStore


@pytest.fixture
def db_path(tmp_path):
    """Path of a new SQLite file (never :memory:: WAL and locking are part of what is tested)."""
    return tmp_path / "queue.db"


@pytest.fixture
def store(db_path):
    opened = SqliteStore(str(db_path))
    yield opened
    opened.close()


@pytest.fixture
def processes():
    """Spawned processes, each in its own process group, killed at teardown."""
    owner = ProcessOwner()
    yield owner
    owner.cleanup()
