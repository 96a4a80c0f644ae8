"""Fixtures: a fresh database per test on each backend, a store on it, an owner for spawned processes.

`db_path` is parametrized: a new SQLite file, and a new schema of the PostgreSQL database named by
QUEUECTL_TEST_POSTGRES (default postgresql://postgres@127.0.0.1:5432/test); the PostgreSQL variant
skips with a reason where no server answers. Tests of SQLite itself use `sqlite_path`.
"""

import pytest
from helpers import BACKENDS, ProcessOwner, postgres_missing_reason, postgres_schema_url, queue_location
from queuectl_core.store import open_store


def pytest_collection_modifyitems(items):
    """For `make test`, which runs the suite in two processes (pytest-xdist, --dist loadgroup): a module's tests
    stay in one process, so that its fixtures (a gunicorn, a browser, built wheels) are set up once, and the
    modules that drive the Docker engine share one, so that two image builds never run at once."""
    for item in items:
        module = item.nodeid.split("::")[0]
        item.add_marker(pytest.mark.xdist_group("docker" if module.startswith("tests/compose/") else module))


@pytest.fixture
def sqlite_path(tmp_path):
    """Path of a new SQLite file (never :memory:: WAL and locking are part of what is tested)."""
    return tmp_path / "queue.db"


@pytest.fixture(params=BACKENDS)
def db_path(request, tmp_path):
    """Where the test's queue lives: a SQLite file, or a PostgreSQL URL of a schema of its own."""
    yield from queue_location(request.param, tmp_path)


@pytest.fixture
def pg_url():
    """A PostgreSQL URL of a schema of its own (for tests that only make sense there)."""
    reason = postgres_missing_reason()
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
