"""The `queuectl` CLI as real processes: config, workers, and where the database is (and when it is unusable)."""

import sqlite3

import pytest
from cli_support import CONTRACT_DEFAULTS, ISO_UTC_MS, run_cli_concurrently
from helpers import QUEUECTL, assert_no_traceback, assert_refused, cli_json, run_cli, wait_for

# ---- config --------------------------------------------------------------------------------------------


def test_config_get_json_is_a_flat_object_with_the_contract_defaults(db_path):
    values = cli_json(db_path, "config", "get")

    assert values.items() >= CONTRACT_DEFAULTS.items()
    assert all(not isinstance(value, (dict, list)) for value in values.values())


@pytest.mark.parametrize(("key", "default"), CONTRACT_DEFAULTS.items())
def test_config_get_key_json_is_an_object_with_only_that_key(db_path, key, default):
    assert cli_json(db_path, "config", "get", key) == {key: default}


def test_config_set_then_get_shows_the_new_value_and_leaves_the_others(db_path):
    assert run_cli(db_path, "config", "set", "backoff_base", "1.5").returncode == 0
    assert run_cli(db_path, "config", "set", "lease_timeout", "12").returncode == 0

    values = cli_json(db_path, "config", "get")

    assert values["backoff_base"] == 1.5
    assert values["lease_timeout"] == 12
    assert (values["backoff_max"], values["max_retries"]) == (3600, 3)


@pytest.mark.parametrize(("key", "value"), [
    pytest.param("max_retries", "-1", id="negative-max_retries"),
    pytest.param("max_retries", "2.5", id="fractional-max_retries"),
    pytest.param("max_retries", "2.0", id="float-max_retries"),
    pytest.param("max_retries", "lots", id="word-max_retries"),
    pytest.param("lease_timeout", "0", id="zero-lease_timeout"),
    pytest.param("lease_timeout", "-30", id="negative-lease_timeout"),
    pytest.param("backoff_base", "abc", id="word-backoff_base"),
    pytest.param("backoff_base", "0.5", id="backoff_base-below-1"),
    pytest.param("backoff_base", "nan", id="nan-backoff_base"),
    pytest.param("backoff_base", "inf", id="infinite-backoff_base"),
    pytest.param("backoff_max", "-1", id="negative-backoff_max"),
    pytest.param("backoff_max", "", id="empty-backoff_max"),
])
def test_config_set_refuses_a_bad_value_with_exit_2_and_changes_nothing(db_path, store, key, value):
    store.set_setting(key, 7)

    result = run_cli(db_path, "config", "set", key, value)

    assert_refused(result, 2, key)
    assert store.get_settings()[key] == 7


def test_config_set_refuses_an_unknown_key_with_exit_2_and_stores_nothing(db_path, store):
    before = store.get_settings()

    result = run_cli(db_path, "config", "set", "colour", "blue")

    assert_refused(result, 2, "colour")
    assert store.get_settings() == before
    assert "colour" not in cli_json(db_path, "config", "get")


def test_config_get_of_an_unknown_key_exits_2_naming_it(db_path):
    assert_refused(run_cli(db_path, "config", "get", "colour"), 2, "colour")


# ---- workers -------------------------------------------------------------------------------------------


def test_worker_stop_with_no_live_worker_exits_0(db_path):
    result = run_cli(db_path, "worker", "stop")

    assert result.returncode == 0, result.stderr
    assert_no_traceback(result)


def test_worker_list_json_with_no_live_worker_is_an_empty_array(db_path):
    assert cli_json(db_path, "worker", "list") == []


def test_worker_start_runs_a_worker_that_worker_list_shows_and_worker_stop_ends(
    db_path, store, processes, tmp_path
):
    store.set_setting("lease_timeout", 3)  # heartbeats every second: the stop request is seen sooner
    decoy = tmp_path / "decoy.db"
    # --db names the queue; QUEUECTL_DB points elsewhere to show the option wins and reaches the worker.
    worker = processes.start([QUEUECTL, "--db", str(db_path), "worker", "start"], env={"QUEUECTL_DB": str(decoy)})

    workers = wait_for(lambda: cli_json(db_path, "worker", "list"), message="the worker to register")
    assert len(workers) == 1
    assert {"id", "host", "pid", "current_job", "heartbeat_at"} <= set(workers[0])
    assert workers[0]["id"] and workers[0]["host"]
    assert isinstance(workers[0]["pid"], int) and workers[0]["pid"] > 0
    assert ISO_UTC_MS.match(workers[0]["heartbeat_at"])

    stopped = run_cli(db_path, "worker", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert worker.wait(timeout=20) == 0
    assert cli_json(db_path, "worker", "list") == []
    assert cli_json(decoy, "worker", "list") == []


# ---- where the database is -------------------------------------------------------------------------------


def test_the_db_option_names_the_database_like_queuectl_db(db_path, tmp_path):
    other = tmp_path / "other.db"

    via_option = run_cli(other, "--db", str(db_path), "enqueue", '{"id":"job1","command":"true"}')
    assert via_option.returncode == 0, via_option.stderr
    assert run_cli(other, "--db", str(db_path), "config", "set", "backoff_base", "3").returncode == 0

    assert [job["id"] for job in cli_json(db_path, "list")] == ["job1"]
    assert cli_json(db_path, "config", "get", "backoff_base") == {"backoff_base": 3}
    assert cli_json(other, "list") == []
    assert cli_json(other, "config", "get", "backoff_base") == {"backoff_base": 2}


def _directory(tmp_path):
    path = tmp_path / "a-directory"
    path.mkdir()
    return path


def _missing_directory(tmp_path):
    return tmp_path / "no-such-directory" / "queue.db"


def _garbage_file(tmp_path):
    path = tmp_path / "garbage.db"
    path.write_bytes(bytes(range(256)) * 16)
    return path


def _text_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a database\n")
    return path


def _foreign_database(tmp_path):
    """A SQLite file of some other program, whose table names clash with queuectl's."""
    path = tmp_path / "other-program.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE jobs (name TEXT)")
    connection.commit()
    connection.close()
    return path


EVERY_COMMAND = [
    ["status"],
    ["status", "--json"],
    ["list", "--json"],
    ["enqueue", '{"command":"true"}'],
    ["show", "job1"],
    ["dlq", "list"],
    ["dlq", "retry", "job1"],
    ["config", "get"],
    ["config", "set", "backoff_base", "3"],
    ["worker", "list"],
    ["worker", "stop"],
]
# Every command opens the database the same way, so the other kinds of unusable file try a few.
SOME_COMMANDS = [["status", "--json"], ["enqueue", '{"command":"true"}'], ["config", "set", "backoff_base", "3"]]


@pytest.mark.parametrize(("make_database", "commands"), [
    pytest.param(_directory, EVERY_COMMAND, id="a-directory"),
    pytest.param(_missing_directory, SOME_COMMANDS, id="in-a-missing-directory"),
    pytest.param(_garbage_file, SOME_COMMANDS, id="a-file-of-garbage-bytes"),
    pytest.param(_text_file, SOME_COMMANDS, id="a-text-file"),
    pytest.param(_foreign_database, SOME_COMMANDS, id="another-programs-sqlite-file"),
])
def test_an_unusable_database_makes_commands_exit_1_with_a_one_line_message(tmp_path, make_database, commands):
    path = make_database(tmp_path)
    before = path.read_bytes() if path.is_file() and make_database is not _foreign_database else None

    results = run_cli_concurrently([(path, args) for args in commands])

    for args, result in zip(commands, results, strict=True):
        try:
            assert_refused(result, 1, str(path))
        except AssertionError as error:
            raise AssertionError(f"queuectl {' '.join(args)}: {error}") from None
    if before is not None:
        assert path.read_bytes() == before, "the CLI must not write into a file that is not its database"


def test_a_database_in_a_missing_directory_does_not_create_the_directory(tmp_path):
    path = _missing_directory(tmp_path)

    assert_refused(run_cli(path, "enqueue", '{"command":"true"}'), 1)
    assert not path.parent.exists()


def test_an_unusable_database_named_by_the_db_option_exits_1(db_path, tmp_path):
    path = _directory(tmp_path)

    result = run_cli(db_path, "--db", str(path), "status", "--json")

    assert_refused(result, 1, str(path))
