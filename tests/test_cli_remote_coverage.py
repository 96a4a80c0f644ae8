"""Every command of `queuectl` works through the API (`--api URL`), or refuses it with exit 2 (`worker start`,
`migrate`, which need the database itself): never an internal error such as a store method the remote store lacks.

A command added later fails test_every_command_is_in_the_table until it is added to RUNS below, and then
test_every_command_runs_through_the_api_or_refuses_it until the remote store (services/cli/queuectl_cli/remote.py)
has what it calls. The outputs themselves are compared with the database's in tests/test_cli_remote.py."""

import click
import pytest
from api.api_support import TOKEN, make_dead, start_gunicorn
from helpers import run_cli
from queuectl_cli.group import cli
from queuectl_core.store import open_store

NEEDS_THE_DATABASE = {"worker start": ["--burst"], "migrate": ["--to", "sqlite:///elsewhere.db"]}

# Each command (its full name) and the invocations that must succeed through the API, run in this order on a queue
# that holds the dead job "dead".
RUNS = {
    "enqueue": [['{"id": "one", "command": "echo one"}'], ['{"id": "two", "command": "true", "after": ["one"]}']],
    "list": [[], ["--state", "pending", "--json"]],
    "show": [["one"], ["one", "--all-history", "--json"]],
    "status": [[], ["--json"]],
    "logs": [["dead"], ["dead", "--attempt", "1"]],
    "cancel": [["two"]],
    "wait": [["one", "--timeout", "0"]],  # one stays pending (no worker): exit 124, see EXIT_CODES
    "rerun": [["two", "--json"]],
    "dlq list": [[], ["--json"]],
    "dlq retry": [["dead"]],
    "dlq purge": [["--yes"]],
    "purge": [["--state", "cancelled", "--dry-run"], ["--state", "cancelled", "--yes"]],
    "pause": [[], ["--queue", "deploy"]],
    "resume": [[], ["--queue", "deploy"]],
    "queue list": [[], ["--json"]],
    "queue limit": [["deploy", "2"], ["deploy", "none"]],
    "queue rate": [["deploy", "10/m"], ["deploy", "none"]],
    "config get": [[], ["max_retries"]],
    "config set": [["max_retries", "4"]],
    "worker list": [[], ["--json"], ["--all"]],
    "worker stop": [[]],
    "schedule add": [["hourly", "--every", "1h", '{"command": "true"}'],
                     ["nightly", "--cron", "0 2 * * *", "--tz", "Europe/Berlin", '{"command": "true"}']],
    "schedule list": [[], ["--json"]],
    "schedule pause": [["hourly"]],
    "schedule resume": [["hourly"]],
    "schedule run": [["nightly"]],
    "schedule rm": [["hourly"]],
    "audit": [[], ["--limit", "3", "--json"]],
    "completion": [["bash"]],
}
EXIT_CODES = {("wait", "one", "--timeout", "0"): 124}


def leaf_commands(group, prefix=()):
    """The full names of every command under `group` ("schedule add", "status", ...)."""
    context = click.Context(group)
    names = []
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        if isinstance(command, click.Group):
            names += leaf_commands(command, (*prefix, name))
        else:
            names.append(" ".join((*prefix, name)))
    return names


def test_every_command_is_in_the_table():
    commands = set(leaf_commands(cli))
    assert len(commands) > 20  # the subcommands were found too
    missing = commands - set(RUNS) - set(NEEDS_THE_DATABASE)
    assert not missing, f"new commands: add them to RUNS (and their store methods to RemoteStore): {missing}"
    assert not (set(RUNS) | set(NEEDS_THE_DATABASE)) - commands  # no stale entries either


def test_every_command_runs_through_the_api_or_refuses_it(tmp_path, processes):
    served = tmp_path / "served.db"
    store = open_store(str(served))
    make_dead(store, "dead")
    store.close()
    env = {"QUEUECTL_API_URL": start_gunicorn(processes, served), "QUEUECTL_API_TOKEN": TOKEN}
    nowhere = tmp_path / "never-created.db"
    for command, invocations in RUNS.items():
        for args in invocations:
            full = (*command.split(), *args)
            result = run_cli(nowhere, *full, env=env)
            assert "internal error" not in result.stderr and "Traceback" not in result.stderr, (full, result.stderr)
            assert result.returncode == EXIT_CODES.get(full, 0), (full, result.stderr)
    for command, args in NEEDS_THE_DATABASE.items():
        result = run_cli(nowhere, *command.split(), *args, env=env)
        assert result.returncode == 2, (command, result.stderr)
        assert "needs the database itself" in result.stderr and "internal error" not in result.stderr
    assert not nowhere.exists()


@pytest.mark.parametrize("command", ["schedule list", "rerun ghost", "audit"])
def test_a_command_through_an_unreachable_api_says_so_in_one_line(tmp_path, command):
    """Not an internal error either when the API cannot be reached."""
    result = run_cli(tmp_path / "q.db", "--api", "http://127.0.0.1:9", *command.split())
    assert result.returncode == 1
    assert result.stderr == "Error: cannot reach http://127.0.0.1:9: connection refused\n"
