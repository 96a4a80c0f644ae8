"""Workers' write transactions on SQLite wait in line on flock(2) of PATH-lock (SqliteStore.line_up_writers)."""

import os
import threading

from helpers import QUIET
from queuectl_core.store import SqliteStore
from queuectl_core.validation import check_job


def test_a_lined_up_writer_waits_for_the_one_inside_and_goes_on_once_it_leaves(sqlite_path):
    first, second = SqliteStore(str(sqlite_path)), SqliteStore(str(sqlite_path))
    first.line_up_writers()
    second.line_up_writers()
    inside, done = threading.Event(), threading.Event()
    leave = threading.Event()

    def hold():
        with first._transaction() as connection:
            connection.execute("INSERT INTO settings (name, value) VALUES ('held', '1')")
            inside.set()
            leave.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(10)
    writer = threading.Thread(target=lambda: (second.enqueue(check_job({"id": "queued", "command": "true"})),
                                              done.set()))
    writer.start()
    assert not done.wait(0.3)  # in line behind the holder (not failing, not writing)
    leave.set()
    holder.join()
    assert done.wait(10)
    writer.join()
    assert second.get_job("queued")["state"] == "pending"
    assert oct(os.stat(f"{sqlite_path}-lock").st_mode & 0o777) == oct(os.stat(sqlite_path).st_mode & 0o666)
    first.close()
    second.close()


def test_a_store_not_in_line_still_writes_beside_lined_up_ones(sqlite_path):
    worker_store, command_store = SqliteStore(str(sqlite_path)), SqliteStore(str(sqlite_path))
    worker_store.line_up_writers()
    worker_store.enqueue(check_job({"id": "a", "command": "true"}))
    command_store.enqueue(check_job({"id": "b", "command": "true"}))  # SQLite's own lock still rules
    assert worker_store.claim_next("w", 30).id == "a"
    assert {job["id"] for job in command_store.list_jobs()} == {"a", "b"}


def test_without_a_usable_lock_file_writes_go_straight_to_sqlite(sqlite_path):
    store = SqliteStore(str(sqlite_path))
    os.symlink(sqlite_path.parent / "missing" / "lock", f"{sqlite_path}-lock")  # can be neither created nor opened
    store.line_up_writers()
    assert store._writers_line is None
    store.enqueue(check_job({"id": "a", "command": "true"}))
    assert store.get_job("a")["state"] == "pending"


def test_workers_line_up_on_the_lock_file_beside_the_database(sqlite_path, processes):
    store = SqliteStore(str(sqlite_path))
    store.enqueue_many([(n, check_job({"command": "true"})) for n in range(20)])
    workers = processes.start_workers(sqlite_path, "--count", "2", "--burst", env=QUIET)
    assert workers.wait(timeout=120) == 0, processes.log(workers)
    assert store.counts()["completed"] == 20
    assert os.path.isfile(f"{sqlite_path}-lock")
