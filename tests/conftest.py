"""Fixtures: a fresh database per test on each backend, a store on it, an owner for spawned processes.

`db_path` is parametrized: a new SQLite file, and a new schema of the PostgreSQL database named by
QUEUECTL_TEST_POSTGRES (default postgresql://postgres@127.0.0.1:5432/test); the PostgreSQL variant
skips with a reason where no server answers. Tests of SQLite itself use `sqlite_path`.
"""

import os
import secrets

import pytest
from helpers import ProcessOwner
from queuectl_core.store import open_store

POSTGRES_URL = os.environ.get("QUEUECTL_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
_postgres_missing = None


def _postgres_reason():
    """Why PostgreSQL tests cannot run here (None when a server answers)."""
    global _postgres_missing
    if _postgres_missing is None:
        try:
            import psycopg

            psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
            _postgres_missing = ""
        except Exception as error:  # ImportError or any connection failure
            _postgres_missing = f"no PostgreSQL at {POSTGRES_URL}: {str(error).strip().splitlines()[0]}"
    return _postgres_missing or None


def postgres_schema_url():
    """A context manager giving the URL of a new, empty schema (dropped afterwards)."""
    import contextlib

    import psycopg

    @contextlib.contextmanager
    def schema():
        name = f"test_{secrets.token_hex(6)}"
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {name}")
        try:
            separator = "&" if "?" in POSTGRES_URL else "?"
            yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{name}"
        finally:
            with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
                admin.execute(f"DROP SCHEMA {name} CASCADE")

    return schema()


@pytest.fixture
def sqlite_path(tmp_path):
    """Path of a new SQLite file (never :memory:: WAL and locking are part of what is tested)."""
    return tmp_path / "queue.db"


@pytest.fixture(params=["sqlite", "postgres"])
def db_path(request, tmp_path):
    """Where the test's queue lives: a SQLite file, or a PostgreSQL URL of a schema of its own."""
    if request.param == "sqlite":
        yield tmp_path / "queue.db"
        return
    reason = _postgres_reason()
    if reason:
        pytest.skip(reason)
    with postgres_schema_url() as url:
        yield url


@pytest.fixture
def store(db_path):
    opened = open_store(str(db_path))
    yield opened
    opened.close()


@pytest.fixture
def processes():
    """Spawned processes, each in its own process group, killed at teardown."""
    owner = ProcessOwner()
    yield owner
    owner.cleanup()
