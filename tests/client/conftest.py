"""Fixtures of the client tests: one Queue per mode (the database on SQLite and on PostgreSQL, the API through a
real gunicorn), so that every test runs against each."""

from dataclasses import dataclass

import pytest
from api.api_support import TOKEN, start_gunicorn
from helpers import postgres_missing_reason, postgres_schema_url
from queuectl import Queue

MODES = ["db-sqlite", "db-postgres", "api"]


@dataclass
class Target:
    """A Queue in one mode, the database behind it, and a way to run a worker on that database."""

    mode: str
    queue: Queue
    location: str
    processes: object

    def run_worker(self):
        """A burst worker on the database until nothing is left to do."""
        worker = self.processes.start_workers(self.location, "--burst")
        assert worker.wait(timeout=60) == 0, self.processes.log(worker)


@pytest.fixture(params=MODES)
def target(request, tmp_path, processes):
    if request.param == "db-postgres":
        reason = postgres_missing_reason()
        if reason:
            pytest.skip(reason)
        with postgres_schema_url() as url:
            with Queue(db=url) as queue:
                yield Target(request.param, queue, url, processes)
        return
    location = str(tmp_path / "queue.db")
    if request.param == "db-sqlite":
        with Queue(db=location) as queue:
            yield Target(request.param, queue, location, processes)
        return
    Queue(db=location).close()  # the schema exists before gunicorn's workers race to make it
    base = start_gunicorn(processes, location)
    with Queue(api=base, token=TOKEN) as queue:
        yield Target(request.param, queue, location, processes)
