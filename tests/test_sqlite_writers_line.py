"""Workers' write transactions on SQLite wait in line on flock(2) of PATH-lock (SqliteStore.line_up_writers)."""

import os
import signal
import sys
import threading

import psutil
import pytest
from helpers import QUIET, wait_for
from queuectl_core.store import SqliteStore
from queuectl_core.store.sqlite_line import line_mode
from queuectl_core.validation import check_job

# Another program that takes the line and never lets go (or a worker frozen while holding it).
HOLD_THE_LINE = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX)
print("holding", flush=True)
time.sleep(600)
"""


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
    assert os.stat(f"{sqlite_path}-lock").st_mode & 0o777 == line_mode(os.stat(sqlite_path).st_mode)
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
    assert store._writers_line.fd is None
    store.enqueue(check_job({"id": "a", "command": "true"}))
    assert store.get_job("a")["state"] == "pending"


def test_workers_line_up_on_the_lock_file_beside_the_database(sqlite_path, processes):
    store = SqliteStore(str(sqlite_path))
    store.enqueue_many([(n, check_job({"command": "true"})) for n in range(20)])
    workers = processes.start_workers(sqlite_path, "--count", "2", "--burst", env=QUIET)
    assert workers.wait(timeout=120) == 0, processes.log(workers)
    assert store.counts()["completed"] == 20
    assert os.path.isfile(f"{sqlite_path}-lock")


@pytest.mark.parametrize("database_mode, expected", [
    (0o644, 0o600), (0o664, 0o660), (0o666, 0o666), (0o600, 0o600), (0o444, 0o000), (0o640, 0o600)])
def test_only_those_who_may_write_the_database_may_open_its_line(database_mode, expected):
    assert line_mode(database_mode) == expected


def test_a_world_readable_database_gets_a_line_file_that_others_cannot_read(sqlite_path):
    SqliteStore(str(sqlite_path)).close()
    os.chmod(sqlite_path, 0o644)
    store = SqliteStore(str(sqlite_path))
    store.line_up_writers()
    assert os.stat(f"{sqlite_path}-lock").st_mode & 0o777 == 0o600
    store.close()


def has_open(pid, path):
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(path) for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def hold_the_line(processes, sqlite_path):
    SqliteStore(str(sqlite_path)).close()
    os.close(os.open(f"{sqlite_path}-lock", os.O_CREAT | os.O_RDWR, 0o600))
    holder = processes.start([sys.executable, "-c", HOLD_THE_LINE, f"{sqlite_path}-lock"],
                             stdout=__import__("subprocess").PIPE)
    assert holder.stdout.readline() == b"holding\n"
    return holder


def test_workers_go_on_when_the_line_is_held_forever_by_another_process(sqlite_path, processes):
    holder = hold_the_line(processes, sqlite_path)
    store = SqliteStore(str(sqlite_path))
    store.enqueue_many([(n, check_job({"command": "true"})) for n in range(10)])
    workers = processes.start_workers(sqlite_path, "--count", "2", "--burst", env=QUIET)
    assert workers.wait(timeout=120) == 0, processes.log(workers)
    assert store.counts()["completed"] == 10
    assert "was held for over" in processes.log(workers)
    assert holder.poll() is None  # still holding: the workers went without the line


def test_a_stop_signal_reaches_a_worker_waiting_in_a_held_line(sqlite_path, processes):
    hold_the_line(processes, sqlite_path)
    store = SqliteStore(str(sqlite_path))
    worker = processes.start_workers(sqlite_path, env=QUIET)
    store.enqueue(check_job({"command": "true"}))
    wait_for(lambda: any(has_open(child.pid, f"{sqlite_path}-lock") for child in psutil.Process(worker.pid).children()),
             message="the worker process opened the line (its first write then waits in it)")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, processes.log(worker)
