"""`queuectl --api URL` (QUEUECTL_API_URL): the CLI's key cases run on a database and through the API (gunicorn on
another database, the same steps): the same output, --json shapes and exit codes."""

import json
import re

import pytest
from api.api_support import TOKEN, free_port, start_gunicorn
from helpers import busy_worker, run_cli
from queuectl_core.store import open_store
from queuectl_core.validation import check_job
from test_history_paging import job_with_runs

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
WORKER = re.compile(r"[\w.-]+-\d+-[0-9a-f]{4}\b")
AGO = re.compile(r"\b\d+(\.\d+)?\s?(ms|s|m|h|d)\b")
GENERATED_ID = re.compile(r"\b[0-9a-f]{16}\b")

# (arguments, stdin): each step runs on both sides, in this order; a step "WORKER" runs a burst worker on each.
STEPS = [
    (["enqueue", '{"id": "a", "command": "echo hi", "max_retries": 0}'], None),
    (["enqueue", "--json", '{"id": "b", "command": "echo out; exit 3", "max_retries": 0, "priority": 2}'], None),
    (["enqueue", '{"id": "c", "command": "true", "after": ["a"], "delay": 0.5, "retry_on": [2]}'], None),
    (["enqueue", '{"id": "a", "command": "true"}'], None),
    (["enqueue", '{"command": "true", "max_retries": -1}'], None),
    (["enqueue", '{"command": "true", "after": ["nobody"]}'], None),
    (["enqueue", "-"], '{"id": "d", "command": "true"}\n\n{"id": "a", "command": "true"}\n'),
    (["enqueue", "-"], '{"id": "d", "command": "true"}\n{"id": "d", "command": "true"}\n'),
    (["enqueue", "-"], '{"id": "d", "command": "true", "after": ["e"]}\n{"id": "e", "command": "true"}\n'),
    (["enqueue", "-", "--json"], '{"id": "d", "command": "true"}\n{"id": "e", "command": "sleep 0", "after": ["d"]}\n'),
    (["list"], None), (["list", "--json"], None), (["list", "--state", "pending", "--limit", "2"], None),
    (["show", "a", "--json"], None), (["show", "ghost"], None), (["status"], None), (["status", "--json"], None),
    "WORKER",
    (["wait", "a", "c", "--json"], None), (["wait", "a", "b"], None), (["wait", "ghost"], None),
    (["show", "b"], None), (["logs", "b"], None), (["logs", "b", "--attempt", "9"], None),
    (["dlq", "list"], None), (["dlq", "list", "--json"], None), (["dlq", "retry", "b", "--json"], None),
    (["dlq", "retry", "b"], None), (["cancel", "b", "--json"], None), (["cancel", "b"], None),
    (["cancel", "ghost"], None),
    (["config", "get", "--json"], None), (["config", "set", "max_retries", "5"], None),
    (["config", "set", "max_retries", "-1"], None), (["config", "get", "max_retries"], None),
    (["pause"], None), (["pause"], None), (["status"], None), (["resume"], None), (["resume"], None),
    (["worker", "list", "--json"], None), (["worker", "stop"], None),
    (["purge", "--state", "completed", "--dry-run", "--json"], None),
    (["purge", "--state", "cancelled", "--yes"], None),
    (["dlq", "purge", "--yes", "--json"], None), (["list", "--json"], None),
    # Named queues (issue 14): list, limit, rate, pause and resume per queue, and their bad input (exit 2).
    (["enqueue", '{"id": "q1", "command": "true", "queue": "deploy", "tags": ["web"]}'], None),
    (["queue", "list"], None), (["queue", "list", "--json"], None),
    (["queue", "limit", "deploy", "2"], None), (["queue", "limit", "deploy", "none"], None),
    (["queue", "limit", "deploy", "0"], None), (["queue", "limit", "bad name", "2"], None),
    (["queue", "rate", "deploy", "10/m"], None), (["queue", "rate", "deploy", "100/30s"], None),
    (["queue", "rate", "deploy", "5/120s"], None), (["queue", "rate", "deploy", "3/2h"], None),
    (["queue", "rate", "deploy", "10/fortnight"], None), (["queue", "rate", "deploy", "none"], None),
    (["pause", "--queue", "deploy"], None), (["pause", "--queue", "deploy"], None),
    (["queue", "list"], None), (["status"], None),
    (["resume", "--queue", "deploy"], None), (["resume", "--queue", "deploy"], None),
    (["pause", "--queue", "bad name"], None), (["resume", "--queue", "bad/name"], None),
    (["queue", "limit", "encode", "3"], None), (["queue", "list", "--json"], None),
    (["list", "--queue", "deploy", "--json"], None), (["list", "--tag", "web"], None),
    # Schedules and reruns (from here on jobs get generated ids: no listing of jobs below).
    (["schedule", "list"], None), (["schedule", "list", "--json"], None),
    (["schedule", "add", "nightly", "--cron", "0  2 * * *", "--timezone", "Europe/Berlin",
      '{"command": "backup.sh", "max_retries": 2, "priority": 3}'], None),
    (["schedule", "add", "beat", "--every", "1.5s", "--overlap", "allow", "--json",
      '{"command": "echo beat", "env": {"A": "1"}, "timeout": 5}'], None),
    (["schedule", "add", "..", "--every", "2h", '{"command": "true"}'], None),
    (["schedule", "add", "nightly", "--every", "1h", '{"command": "true"}'], None),  # the name is taken: exit 1
    (["schedule", "add", "bad", "--cron", "61 * * * *", '{"command": "true"}'], None),  # bad input: exit 2
    (["schedule", "add", "bad", "--cron", "0 2 * *", '{"command": "true"}'], None),
    (["schedule", "add", "bad", "--every", "0.5s", '{"command": "true"}'], None),
    (["schedule", "add", "bad", "--every", "1h", "--cron", "0 2 * * *", '{"command": "true"}'], None),
    (["schedule", "add", "bad", "--every", "1h", "--tz", "Mars/Olympus", '{"command": "true"}'], None),
    (["schedule", "add", "bad", "--every", "1h", '{"command": "true", "id": "x"}'], None),
    (["schedule", "add", "bad name", "--every", "1h", '{"command": "true"}'], None),
    (["schedule", "add", "bad", "--every", "1h", "nope"], None),
    (["schedule", "list"], None), (["schedule", "list", "--json"], None),
    (["schedule", "pause", "nightly"], None), (["schedule", "pause", ".."], None), (["status"], None),
    (["schedule", "list"], None), (["schedule", "resume", "nightly"], None), (["schedule", "resume", "nightly"], None),
    (["schedule", "pause", "ghost"], None), (["schedule", "resume", "ghost"], None),
    (["schedule", "run", "ghost"], None), (["schedule", "rm", "ghost"], None), (["schedule", "rm", ""], None),
    (["schedule", "rm", "a/b"], None), (["schedule", "run", "."], None),
    (["schedule", "run", "nightly", "--json"], None), (["schedule", "run", "beat"], None),
    (["schedule", "list", "--json"], None), (["schedule", "resume", ".."], None), (["status"], None),
    (["schedule", "rm", "beat"], None), (["schedule", "rm", "beat"], None), (["schedule", "list"], None),
    (["rerun", "a"], None), (["rerun", "c", "--json"], None), (["rerun", "ghost"], None), (["rerun", ""], None),
    (["rerun", ".."], None), (["rerun", "a/b"], None),
    (["enqueue", '{"id": "f", "command": "true", "after": ["a"]}'], None),
    (["purge", "--state", "completed", "--yes"], None),
    (["rerun", "f"], None),  # its `after` names a job purged since: exit 1
    (["show", "f", "--history-limit", "1"], None), (["show", "..", "--json"], None), (["cancel", ".."], None),
]


def normalized(text):
    return GENERATED_ID.sub("<id>", AGO.sub("<ago>", WORKER.sub("<worker>", TIME.sub("<time>", text))))


@pytest.fixture
def sides(tmp_path, processes):
    """(local db path, remote db path, env for the remote side)."""
    local, served = tmp_path / "local.db", tmp_path / "served.db"
    base = start_gunicorn(processes, served)
    remote_env = {"QUEUECTL_API_URL": base, "QUEUECTL_API_TOKEN": TOKEN}
    return local, served, remote_env


def test_the_cli_says_the_same_on_the_database_and_through_the_api(sides, processes, tmp_path):
    local, served, remote_env = sides
    nowhere = tmp_path / "never-created.db"  # the remote side must not touch a database of its own
    for step in STEPS:
        if step == "WORKER":
            for where in (local, served):
                worker = processes.start_workers(where, "--burst")
                assert worker.wait(timeout=60) == 0, processes.log(worker)
            continue
        args, stdin = step
        mine = run_cli(local, *args, input=stdin)
        theirs = run_cli(nowhere, *args, input=stdin, env=remote_env)
        assert theirs.returncode == mine.returncode, (args, mine.stderr, theirs.stderr)
        assert normalized(theirs.stdout) == normalized(mine.stdout), args
        assert normalized(theirs.stderr) == normalized(mine.stderr), args
    assert not nowhere.exists()
    audit = run_cli(nowhere, "audit", "--json", env=remote_env)
    assert audit.returncode == 0 and '"actor": "api:operator"' in audit.stdout


@pytest.mark.parametrize("args", [["worker", "start", "--burst"], ["migrate", "--to", "sqlite:///x.db"]])
def test_commands_on_the_database_itself_refuse_the_api(tmp_path, args):
    result = run_cli(tmp_path / "q.db", "--api", "http://127.0.0.1:9", *args)
    assert result.returncode == 2
    assert "needs the database itself" in result.stderr and "Traceback" not in result.stderr


def test_db_and_api_together_are_a_usage_error(tmp_path):
    result = run_cli(tmp_path / "q.db", "--db", str(tmp_path / "q.db"), "--api", "http://127.0.0.1:9", "status")
    assert result.returncode == 2 and "--db or --api" in result.stderr


def test_a_wrong_token_and_an_unreachable_url_say_so_in_one_line(sides, tmp_path):
    _, _, remote_env = sides
    wrong = run_cli(tmp_path / "q.db", "status", env={**remote_env, "QUEUECTL_API_TOKEN": "wrong" * 8})
    assert wrong.returncode == 1
    assert wrong.stderr.startswith("Error: the API at ") and "refused the token" in wrong.stderr
    assert wrong.stderr.count("\n") == 1
    url = f"http://127.0.0.1:{free_port()}"
    gone = run_cli(tmp_path / "q.db", "--api", url, "list")
    assert gone.returncode == 1
    assert gone.stderr == f"Error: cannot reach {url}: connection refused\n"


ACTOR = re.compile(r"\bcli:[\w.-]+@[\w.-]+|\bapi:operator\b")


def same_on_both(local, served_cli, remote_env, args, unaligned=False):
    """Run `queuectl ARGS` on the local database and through the API; assert the same output and exit code."""
    mine = run_cli(local, *args)
    theirs = run_cli(served_cli, *args, env=remote_env)
    assert theirs.returncode == mine.returncode, (args, mine.stderr, theirs.stderr)
    for their_text, my_text in ((theirs.stdout, mine.stdout), (theirs.stderr, mine.stderr)):
        their_text, my_text = normalized(their_text), normalized(my_text)
        if unaligned:  # the actors differ in length (cli:USER@HOST, api:operator): so do the table's columns
            their_text, my_text = (re.sub(r" +", " ", ACTOR.sub("<actor>", text)) for text in (their_text, my_text))
        assert their_text == my_text, args
    return mine


def test_audit_and_history_paging_say_the_same_through_the_api(sides, tmp_path):
    """`audit` (its paging included) and `show`'s history pages, beyond the API's page of 1000 runs."""
    local, served, remote_env = sides
    nowhere = tmp_path / "never-created.db"
    for where in (local, served):  # the same jobs on both, added on the database (the API records its enqueues)
        store = open_store(str(where))
        job_with_runs(store, "many", 1003)
        for job_id in ("x", "y", "z"):
            store.enqueue(check_job({"id": job_id, "command": "true"}))
        store.close()
    steps = [["show", "many"], ["show", "many", "--history-limit", "3"], ["show", "many", "--history-limit", "1001"],
             ["show", "many", "--all-history", "--json"], ["show", "x", "--all-history"], ["logs", "many"],
             ["logs", "many", "--attempt", "1002"]]
    for args in steps:
        same_on_both(local, nowhere, remote_env, args)
    shown = json.loads(run_cli(nowhere, "show", "many", "--all-history", "--json", env=remote_env).stdout)
    assert [run["attempt"] for run in shown["history"]] == list(range(1, 1004)) and shown["history_total"] == 1003
    same_on_both(local, nowhere, remote_env, ["audit"])  # the empty log
    for args in (["cancel", "x"], ["pause"], ["resume"], ["config", "set", "retention", "30d"], ["cancel", "y"],
                 ["purge", "--state", "cancelled", "--yes"], ["worker", "stop"]):
        same_on_both(local, nowhere, remote_env, args)
    for args in (["audit"], ["audit", "--json"], ["audit", "--limit", "2"], ["audit", "--limit", "2", "--offset", "3"],
                 ["audit", "--offset", "7"], ["audit", "--offset", "6", "--json"]):
        same_on_both(local, nowhere, remote_env, args, unaligned=True)
    entries = json.loads(run_cli(nowhere, "audit", "--json", env=remote_env).stdout)
    assert [entry["action"] for entry in entries] == ["worker-stop", "purge", "cancel", "config-set", "resume",
                                                      "pause", "cancel"]
    assert not nowhere.exists()


def test_workers_with_slots_are_listed_the_same_through_the_api(sides, tmp_path):
    """Issue 16: `worker list` (the table, --all, --json) and `status` show each worker's slots and running jobs."""
    local, served, remote_env = sides
    nowhere = tmp_path / "never-created.db"
    for where in (local, served):  # the same workers and runs on both (run times under a minute: see AGO)
        store = open_store(str(where))
        busy_worker(store, "w4", 4, [18, 15, 12])
        busy_worker(store, "w8", 8, [25, 24, 23, 22, 21, 20, 19])
        store.register_worker("w1", "host", 7)
        store.close()
    for args in (["worker", "list"], ["worker", "list", "--all"], ["worker", "list", "--json"], ["status"],
                 ["status", "--json"]):
        shown = same_on_both(local, nowhere, remote_env, args).stdout
        assert "4/4" not in shown and ("3/4" in shown or '"concurrency": 4' in shown), args
    assert "+3 more" in run_cli(nowhere, "worker", "list", env=remote_env).stdout
    listed = json.loads(run_cli(nowhere, "worker", "list", "--json", env=remote_env).stdout)
    assert [(worker["id"], worker["concurrency"], len(worker["jobs"])) for worker in listed] == [
        ("w4", 4, 3), ("w8", 8, 7), ("w1", 1, 0)]
    assert not nowhere.exists()
