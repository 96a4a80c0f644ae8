"""The CLI's start-up (issue 5): a command loads only what it needs, and `status --json`, answered without
click, prints exactly what the click command prints. Timings belong to benchmarks/reads.py, not here."""

import os
import re
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner
from helpers import QUEUECTL, run_cli
from queuectl_cli import quick
from queuectl_cli.completion import COMPLETE_VARIABLE
from queuectl_cli.group import COMMANDS, cli
from queuectl_core.store import SqliteStore
from queuectl_core.validation import parse_job_json

# Runs the console script's main() and writes the names of every module it loaded to argv[1].
PROBE = """
import atexit, sys
out = sys.argv.pop(1)
atexit.register(lambda: open(out, "w").write("\\n".join(sorted(sys.modules))))
sys.argv[0] = "queuectl"
from queuectl_cli.main import main
sys.exit(main())
"""
NEVER_ON_SQLITE = {"psycopg", "psycopg_pool", "psutil", "flask", "queuectl_api", "queuectl_worker",
                   "queuectl_core.store.postgres", "queuectl_core.store.sqlite_watch", "ctypes"}
OTHER_COMMAND_MODULES = {"queuectl_cli.bulk", "queuectl_cli.logs", "queuectl_cli.migrate", "queuectl_cli.control",
                         "queuectl_cli.settings", "queuectl_cli.workers"}


def loaded_modules(tmp_path, db_path, *args):
    """The modules a `queuectl ARGS` process loaded (it must succeed)."""
    out = tmp_path / "modules.txt"
    result = subprocess.run([sys.executable, "-c", PROBE, str(out), *args], capture_output=True, text=True,
                            env={**os.environ, "QUEUECTL_DB": str(db_path)}, timeout=30)
    assert result.returncode == 0, result.stderr
    return set(out.read_text().split("\n"))


def busy_queue(path):
    """A SQLite queue with jobs in several states, a live worker running one of them, and paused."""
    store = SqliteStore(str(path))
    try:
        for number in range(5):
            store.enqueue(parse_job_json(f'{{"id": "job-{number}", "command": "true", "priority": {number}}}'))
        store.register_worker("w1", "host-1", 4242)
        store.claim_next("w1", 60)
        store.cancel("job-0")
        store.pause()
    finally:
        store.close()
    return path


@pytest.mark.parametrize("form", [["status", "--json"], ["status"]], ids=["json", "text"])
def test_status_on_sqlite_loads_neither_click_nor_any_postgres_worker_or_api_code(tmp_path, sqlite_path, form):
    modules = loaded_modules(tmp_path, busy_queue(sqlite_path), *form)

    assert "queuectl_core.store.sqlite" in modules  # the probe did see the command run
    assert modules.isdisjoint(NEVER_ON_SQLITE | OTHER_COMMAND_MODULES | {"click", "queuectl_cli.jobs"})


@pytest.mark.parametrize("args", [
    pytest.param(["enqueue", '{"command": "true"}'], id="enqueue"),
    pytest.param(["list", "--json"], id="list"),
])
def test_a_command_on_sqlite_loads_its_own_module_only_and_no_postgres_worker_or_api_code(tmp_path, sqlite_path,
                                                                                         args):
    modules = loaded_modules(tmp_path, sqlite_path, *args)

    assert {"click", "queuectl_cli.jobs", "queuectl_core.store.sqlite"} <= modules
    assert modules.isdisjoint(NEVER_ON_SQLITE | OTHER_COMMAND_MODULES)


def test_help_lists_every_command_with_its_short_help(sqlite_path):
    result = run_cli(sqlite_path, "--help")

    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.split("Commands:\n")[1].splitlines() if line.strip()}
    assert sorted(rows) == sorted(COMMANDS)
    for name in COMMANDS:
        command = cli.commands[name]
        assert command.name == name  # the table names each command by the name it declares
        first_words = command.get_short_help_str(limit=45).split()[:4]
        assert " ".join(first_words) in " ".join(rows[name].split()), name


def test_an_unknown_command_still_suggests_the_lazily_loaded_one(sqlite_path):
    result = run_cli(sqlite_path, "stat")

    assert result.returncode == 2
    assert "Did you mean 'status'?" in result.stderr


def test_the_quick_path_knows_the_name_of_the_completion_variable():
    assert quick.COMPLETE_VARIABLE == COMPLETE_VARIABLE


@pytest.mark.parametrize(("argv", "expected"), [
    (["status", "--json"], (True, None)),
    (["--db", "q.db", "status", "--json"], (True, "q.db")),
    (["--db=q.db", "status", "--json"], (True, "q.db")),
    (["status"], (True, None)),
    (["--db", "q.db", "status"], (True, "q.db")),
    (["status", "--help"], (False, None)),
    (["status", "--json", "x"], (False, None)),
    (["--json", "status"], (False, None)),
    (["status", "--json", "--json"], (False, None)),
    (["status", "--help", "--json"], (False, None)),
    (["--db", "-x", "status", "--json"], (False, None)),
    (["--db=", "status", "--json"], (False, None)),
    (["--db", "a", "--db", "b", "status", "--json"], (False, None)),
    (["--version", "status", "--json"], (False, None)),
])
def test_the_quick_path_takes_only_plain_status(monkeypatch, argv, expected):
    monkeypatch.delenv("QUEUECTL_DB", raising=False)

    assert quick.location(argv) == expected


def masked_ages(text):
    """The text with worker ages ('0.52s ago', '(1.03s)') masked: two runs are moments apart."""
    return re.sub(rb"\d[\d.hms]*(?= ago|\))", b"AGE", text)


@pytest.mark.parametrize("form", [["status", "--json"], ["status"]], ids=["json", "text"])
@pytest.mark.parametrize("shape", ["--db PATH", "--db=PATH", "QUEUECTL_DB"])
@pytest.mark.parametrize("queue", ["empty", "busy"])
def test_status_without_click_prints_byte_for_byte_what_the_click_command_prints(tmp_path, shape, queue, form):
    path = tmp_path / "queue.db"
    if queue == "busy":
        busy_queue(path)
    else:
        SqliteStore(str(path)).close()
    args = {"--db PATH": ["--db", str(path)], "--db=PATH": [f"--db={path}"], "QUEUECTL_DB": []}[shape]
    env = {**os.environ, "QUEUECTL_DB": str(path) if shape == "QUEUECTL_DB" else ""}

    quick_run = subprocess.run([QUEUECTL, *args, *form], capture_output=True, env=env, timeout=30)
    click_run = CliRunner().invoke(cli, [*args, *form], env=env, prog_name="queuectl")

    assert (quick_run.returncode, quick_run.stderr) == (0, b"")
    if "--json" in form:
        assert quick_run.stdout == click_run.stdout_bytes
    else:
        assert masked_ages(quick_run.stdout) == masked_ages(click_run.stdout_bytes)
        assert (b"Paused since" in quick_run.stdout) == (queue == "busy")
    assert click_run.exit_code == 0


@pytest.mark.parametrize("form", [["status", "--json"], ["status"]], ids=["json", "text"])
@pytest.mark.parametrize("kind", ["missing directory", "not a database"])
def test_status_on_an_unusable_database_fails_as_the_click_command_does(tmp_path, kind, form):
    path = tmp_path / "gone" / "queue.db"
    if kind == "not a database":
        path = tmp_path / "notes.txt"
        path.write_text("not a queue\n" * 100)

    result = run_cli(path, *form)
    expected = CliRunner().invoke(cli, form, env={"QUEUECTL_DB": str(path)}, prog_name="queuectl")

    assert result.returncode == expected.exit_code == 1
    assert result.stderr == expected.stderr
    assert result.stdout == expected.stdout == ""


def test_the_click_group_is_still_reachable_from_main():
    from queuectl_cli import main

    assert main.cli is cli
    assert isinstance(cli, click.Group)
