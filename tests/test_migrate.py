"""`queuectl migrate --to`: a SQLite queue copied into PostgreSQL, history and settings included."""

from helpers import run_cli
from queuectl_core.lifecycle import COMPLETED, FAILED, Outcome
from queuectl_core.store import open_store
from queuectl_core.validation import check_job


def fill(store):
    """Jobs in several states, with history and a changed setting."""
    store.set_setting("backoff_base", "3")
    for n in range(5):
        store.enqueue(check_job({"id": f"p{n}", "command": f"echo {n}", "priority": n}))
    store.enqueue(check_job({"id": "dead1", "command": "exit 2", "max_retries": 0}))
    store.enqueue(check_job({"id": "child", "command": "true", "after": ["p0"]}))
    running = store.claim_next("w", 30)
    assert running.id == "p4"
    claim = store.claim_next("w", 30)
    outcome = Outcome(FAILED, 2, "exit code 2")
    store.finish_run(claim, outcome, "boom\n")
    return running


def test_a_sqlite_queue_is_copied_whole_into_postgresql(sqlite_path, pg_url, processes):
    source = open_store(str(sqlite_path))
    running = fill(source)
    # p4 is still processing: the copy is refused until its worker has finished.
    result = run_cli(sqlite_path, "migrate", "--to", pg_url)
    assert result.returncode == 1 and "processing" in result.stderr
    done = Outcome(COMPLETED, 0)
    source.finish_run(running, done, "4\n")
    before = {job["id"]: source.get_job(job["id"], history=True) for job in source.list_jobs(limit=100)}

    result = run_cli(sqlite_path, "migrate", "--to", pg_url)
    assert result.returncode == 0, result.stderr
    assert "Copied 7 jobs, 2 runs and 1 setting" in result.stdout

    target = open_store(pg_url)
    after = {job["id"]: target.get_job(job["id"], history=True) for job in target.list_jobs(limit=100)}
    assert after == before
    assert target.counts() == source.counts()
    assert target.get_settings()["backoff_base"] == 3
    assert target._read("SELECT count(*) FROM job_deps").fetchone()[0] == 1  # child still waits for p0
    # The copy is a working queue: new jobs get fresh sequence numbers and workers run them.
    target.enqueue(check_job({"id": "new", "command": "true"}))
    assert target.list_jobs(limit=1)[0]["id"] == "new"
    workers = processes.start_workers(pg_url, "--burst", env={"QUEUECTL_LOG_LEVEL": "WARNING"})
    assert workers.wait(timeout=120) == 0
    assert target.get_job("new")["state"] == "completed"
    # A second copy into the now non-empty target is refused.
    result = run_cli(sqlite_path, "migrate", "--to", pg_url)
    assert result.returncode == 1 and "already holds" in result.stderr
    source.close()
    target.close()


def test_migrate_refuses_a_target_that_is_not_a_database_url(sqlite_path):
    result = run_cli(sqlite_path, "migrate", "--to", "/tmp/somewhere")
    assert result.returncode == 2 and "postgresql://" in result.stderr


def test_migrate_never_prints_the_postgresql_password(sqlite_path, pg_url):
    # The test server trusts local connections and ignores the password; what matters is what is printed.
    secret = "Sup3r-s3cret-pw"
    scheme, rest = pg_url.split("://", 1)
    user_and_host, path = rest.split("/", 1)
    user, host = user_and_host.rsplit("@", 1)
    target = f"{scheme}://{user.split(':')[0]}:{secret}@{host}/{path}&password={secret}"
    source = open_store(str(sqlite_path))
    source.enqueue(check_job({"id": "one", "command": "true"}))
    source.close()
    result = run_cli(sqlite_path, "migrate", "--to", target)
    assert result.returncode == 0, result.stderr
    assert "Copied 1 job" in result.stdout and ":***@" in result.stdout
    assert secret not in result.stdout + result.stderr
    # Refused and failing targets say so without the password too.
    for bad in (f"mysql://u:{secret}@h/db", f"postgresql://u:{secret}@127.0.0.1:1/db"):
        result = run_cli(sqlite_path, "migrate", "--to", bad)
        assert result.returncode in (1, 2) and result.stderr.strip(), result
        assert secret not in result.stdout + result.stderr
