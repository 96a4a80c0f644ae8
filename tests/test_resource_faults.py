"""Resource faults: a full disk and a read-only database, file or directory.

A full disk is a small tmpfs mounted for the test (skipped with the reason where mounting is not permitted) and
filled with a filler file; "space returns" is the filler removed or the tmpfs grown. Read-only files and
directories are checked without the root's override of file permissions (CAP_DAC_OVERRIDE dropped by setpriv), as
an ordinary user would meet them. Expected: one clear line and exit 1 from the CLI (never a traceback), 503 from
the API, an intact database, and workers that wait and go on once space returns.
"""

import errno
import os
import shutil
import sqlite3
import subprocess

import pytest
from helpers import QUEUECTL_WORKER, run_cli, wait_for
from queuectl_core.errors import DatabaseUnusable
from queuectl_core.store import open_store
from queuectl_core.validation import check_job

BIG_COMMAND = "echo " + "x" * 100_000  # needs new pages (and fits in one argument: 128 KiB at most)


class SmallDisk:
    """A tmpfs of a few MiB at `path`, which a test can fill, free, grow and make read-only."""

    def __init__(self, path, size):
        self.path = path
        self.filler = path / "filler"
        self._mount("-t", "tmpfs", "-o", f"size={size},mode=1777", "tmpfs", str(path))

    @staticmethod
    def _mount(*args):
        result = subprocess.run(["mount", *args], capture_output=True, text=True)
        if result.returncode != 0:
            raise OSError(result.stderr.strip() or f"mount exited with {result.returncode}")

    def fill(self):
        """Take every free byte with a filler file."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for chunk in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):
                while True:
                    try:
                        os.write(fd, b"\0" * chunk)
                    except OSError as error:
                        if error.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(fd)
        assert shutil.disk_usage(self.path).free < 4096

    def free(self):
        self.filler.unlink(missing_ok=True)

    def remount(self, options):
        self._mount("-o", f"remount,{options}", str(self.path))

    def unmount(self):
        if subprocess.run(["umount", str(self.path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)  # busy: detach it anyway


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs, unmounted at teardown; skips where mounting is not permitted (not root, no CAP_SYS_ADMIN)."""
    path = tmp_path / "disk"
    path.mkdir()
    try:
        disk = SmallDisk(path, "4m")
    except OSError as error:
        pytest.skip(f"cannot mount a small tmpfs here: {error}")
    yield disk
    disk.unmount()


def integrity(path):
    connection = sqlite3.connect(str(path), timeout=30)
    try:
        return connection.execute("PRAGMA integrity_check").fetchall()
    finally:
        connection.close()


def assert_one_clear_line(result, exit_code, *words):
    assert result.returncode == exit_code, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


# ---- a full disk ---------------------------------------------------------------------------------------------


def test_enqueue_on_a_full_disk_exits_1_with_one_line_and_the_database_stays_intact(small_disk):
    db = small_disk.path / "queue.db"
    assert run_cli(db, "enqueue", '{"id": "before", "command": "true"}').returncode == 0
    with _Opened(db):  # as a running worker or the API would, which keeps the -wal and -shm files
        small_disk.fill()

        single = run_cli(db, "enqueue", f'{{"id": "big", "command": "{BIG_COMMAND}"}}')
        bulk = run_cli(db, "enqueue", "-", input="".join(f'{{"command": "{BIG_COMMAND}"}}\n' for _ in range(3)))

        assert_one_clear_line(single, 1, "full")
        assert_one_clear_line(bulk, 1, "full")
        assert integrity(db) == [("ok",)]
        status = run_cli(db, "status", "--json")  # reading goes on
        assert status.returncode == 0 and '"pending": 1' in status.stdout, status.stderr

        small_disk.free()
        again = run_cli(db, "enqueue", f'{{"id": "big", "command": "{BIG_COMMAND}"}}')
        assert again.returncode == 0, again.stderr
        assert run_cli(db, "show", "big").returncode == 0
    assert integrity(db) == [("ok",)]


def test_a_full_disk_with_the_database_closed_says_so_even_for_reads(small_disk):
    db = small_disk.path / "queue.db"
    assert run_cli(db, "enqueue", '{"command": "true"}').returncode == 0  # closed: no -wal or -shm left
    small_disk.fill()

    for args in (["status"], ["enqueue", '{"command": "true"}']):
        # SQLite cannot create the -shm file it needs even to read: "disk I/O error", which the message explains.
        assert_one_clear_line(run_cli(db, *args), 1, "no space left")

    small_disk.free()
    assert run_cli(db, "status").returncode == 0
    assert integrity(db) == [("ok",)]


def test_workers_started_on_a_full_disk_wait_and_run_the_queue_once_space_returns(small_disk, processes):
    db = small_disk.path / "queue.db"
    with _Opened(db) as store:
        for number in range(10):
            store.enqueue(check_job({"id": f"job-{number}", "command": "true"}))
        small_disk.fill()
        worker = processes.start_workers(db, "--count", "2")

        wait_for(lambda: "full" in processes.log(worker), timeout=30, message="the workers to meet the full disk")
        assert worker.poll() is None, processes.log(worker)  # waiting, not crashed
        assert store.counts()["pending"] == 10

        small_disk.free()
        wait_for(lambda: store.counts()["completed"] == 10, timeout=60, message="the queue to drain")
    log = processes.log(worker)
    assert "Traceback" not in log and "died" not in log, log[-3000:]
    assert integrity(db) == [("ok",)]


def test_a_disk_that_fills_while_workers_run_loses_no_job(small_disk, processes):
    db = small_disk.path / "queue.db"
    with _Opened(db) as store:
        store.set_settings({"lease_timeout": 3, "backoff_base": 1, "backoff_max": 1})
        # Each run keeps ~60 KB of output: the database grows with every finished job.
        for number in range(40):
            store.enqueue(check_job({"id": f"job-{number}", "max_retries": 20,
                                     "command": "head -c 60000 /dev/zero | tr '\\0' x"}))
        small_disk.fill()
        small_disk.free()
        # Leave ~1 MB: the disk fills after a dozen or so jobs while the workers run.
        with open(small_disk.filler, "wb") as filler:
            filler.write(b"\0" * (shutil.disk_usage(small_disk.path).free - 1_000_000))
        worker = processes.start_workers(db, "--count", "2")
        wait_for(lambda: "full" in processes.log(worker), timeout=60, message="the disk to fill up")
        assert worker.poll() is None, processes.log(worker)

        small_disk.remount("size=64m")
        wait_for(lambda: store.counts()["completed"] == 40, timeout=90,
                 message=f"every job to complete ({store.counts()})")
        assert store.counts()["dead"] == 0
    assert "Traceback" not in processes.log(worker)
    assert integrity(db) == [("ok",)]


def test_the_api_answers_503_in_json_on_a_full_disk_and_201_once_space_returns(small_disk):
    from queuectl_api import create_app

    db = small_disk.path / "queue.db"
    token = "a-test-token-of-some-length-0123456789"
    client = create_app({"QUEUECTL_DB": str(db), "QUEUECTL_API_TOKEN": token, "TESTING": True}).test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post("/api/v1/jobs", json={"command": "true"}, headers=headers).status_code == 201
    with _Opened(db):  # a worker keeps the database open meanwhile
        small_disk.fill()

        refused = client.post("/api/v1/jobs", json={"command": BIG_COMMAND}, headers=headers)

        assert refused.status_code == 503, refused.get_data(as_text=True)[:300]
        assert "full" in refused.get_json()["error"]
        assert client.get("/api/v1/stats", headers=headers).status_code == 200
        small_disk.free()
        assert client.post("/api/v1/jobs", json={"command": BIG_COMMAND}, headers=headers).status_code == 201


class _Opened:
    """A store opened for a with-block."""

    def __init__(self, db):
        self.store = open_store(str(db))

    def __enter__(self):
        return self.store

    def __exit__(self, *exc):
        self.store.close()


# ---- read-only -----------------------------------------------------------------------------------------------


def without_root_override(args):
    """`args` run without CAP_DAC_OVERRIDE, so that root meets file permissions as any user does."""
    if os.geteuid() != 0:
        return list(args)
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is needed to drop root's override of file permissions")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--", *args]


def run_unprivileged(db, *args):
    from helpers import QUEUECTL

    return subprocess.run(without_root_override([QUEUECTL, *args]), capture_output=True, text=True, timeout=60,
                          env={**os.environ, "QUEUECTL_DB": str(db)})


def test_a_read_only_file_system_gives_one_clear_line_for_reads_and_writes(small_disk):
    db = small_disk.path / "queue.db"
    assert run_cli(db, "enqueue", '{"command": "true"}').returncode == 0
    small_disk.remount("ro")
    try:
        for args in (["status"], ["enqueue", '{"command": "true"}'], ["config", "set", "max_retries", "2"]):
            assert_one_clear_line(run_cli(db, *args), 1, "read-only")
        with pytest.raises(DatabaseUnusable, match="read-only"):
            open_store(str(db))
    finally:
        small_disk.remount("rw")
    assert integrity(db) == [("ok",)]


def test_a_read_only_database_file_can_be_read_but_a_write_is_one_clear_line(tmp_path):
    db = tmp_path / "queue.db"
    assert run_cli(db, "enqueue", '{"id": "kept", "command": "true"}').returncode == 0
    os.chmod(tmp_path, 0o777)  # the directory stays writable: only the file is read-only
    db.chmod(0o444)

    status = run_unprivileged(db, "status", "--json")
    enqueue = run_unprivileged(db, "enqueue", '{"command": "true"}')
    worker = subprocess.run(without_root_override([QUEUECTL_WORKER]), capture_output=True, text=True, timeout=60,
                            env={**os.environ, "QUEUECTL_DB": str(db)})

    assert status.returncode == 0 and '"pending": 1' in status.stdout, status.stderr
    assert_one_clear_line(enqueue, 1, "readonly")
    # A worker could never record a run: it says so and exits instead of retrying forever.
    assert_one_clear_line(worker, 1, "read-only", str(db))
    db.chmod(0o644)
    assert integrity(db) == [("ok",)]


def test_a_read_only_directory_gives_one_clear_line_naming_the_wal_files(tmp_path):
    directory = tmp_path / "data"
    directory.mkdir()
    db = directory / "queue.db"
    assert run_cli(db, "enqueue", '{"command": "true"}').returncode == 0  # closed: no -wal or -shm left
    directory.chmod(0o555)
    try:
        for args in (["status"], ["enqueue", '{"command": "true"}']):
            assert_one_clear_line(run_unprivileged(db, *args), 1, "not writable", "queue.db-wal")
    finally:
        directory.chmod(0o755)
