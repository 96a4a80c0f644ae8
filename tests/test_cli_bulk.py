"""Bulk enqueue, `queuectl enqueue -` and `queuectl enqueue --file F`: one JSON job per line, all or nothing.

Real CLI processes against a real temporary SQLite file, as in test_cli.py.
"""

import json
import re

import pytest
from helpers import assert_no_traceback, assert_refused, cli_json, run_cli
from queuectl_core.validation import check_job


def names_line(result, number):
    """The message names line `number` (and not, say, line 10 when 1 is meant)."""
    return re.search(rf"\bline {number}\b", result.stderr) is not None


def job_ids(store):
    return [job["id"] for job in store.list_jobs(limit=10_000)]


def lines(*jobs):
    """JSON lines text for `jobs` (dicts are dumped, strings are taken as typed)."""
    return "".join((job if isinstance(job, str) else json.dumps(job)) + "\n" for job in jobs)


# ---- what is added ------------------------------------------------------------------------------------


def test_enqueue_dash_adds_one_job_per_line_of_stdin_skipping_blank_lines_and_prints_the_count(db_path, store):
    text = lines({"id": "a", "command": "true"}, "", "   ", {"id": "b", "command": "echo b"}, "\t",
                 {"id": "c", "command": "exit 1", "max_retries": 0})

    result = run_cli(db_path, "enqueue", "-", input=text)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "3\n"
    assert job_ids(store) == ["c", "b", "a"]  # newest first: the lines were added in order
    assert store.get_job("b")["command"] == "echo b"
    assert store.get_job("c")["max_retries"] == 0


def test_readme_printf_example_adds_two_jobs_and_prints_2(db_path, store):
    result = run_cli(db_path, "enqueue", "-", input='{"command":"echo a"}\n\n{"command":"echo b","priority":5}\n')

    assert result.returncode == 0, result.stderr
    assert result.stdout == "2\n"
    newest, oldest = store.list_jobs()
    assert (oldest["command"], oldest["priority"]) == ("echo a", 0)
    assert (newest["command"], newest["priority"]) == ("echo b", 5)


def test_enqueue_file_adds_one_job_per_line_of_the_file_and_prints_the_count(db_path, store, tmp_path):
    jobs_file = tmp_path / "jobs.jsonl"
    jobs_file.write_text(lines({"id": "a", "command": "true"}, {"id": "b", "command": "true"}))

    result = run_cli(db_path, "enqueue", "--file", str(jobs_file))

    assert result.returncode == 0, result.stderr
    assert result.stdout == "2\n"
    assert job_ids(store) == ["b", "a"]


def test_enqueue_file_dash_reads_stdin_too(db_path, store):
    result = run_cli(db_path, "enqueue", "--file", "-", input=lines({"id": "a", "command": "true"}))

    assert result.returncode == 0, result.stderr
    assert result.stdout == "1\n"
    assert job_ids(store) == ["a"]


def test_bulk_enqueue_json_prints_only_the_ids_in_line_order_generated_ones_included(db_path, store):
    text = lines({"id": "first", "command": "true"}, {"command": "true"}, {"id": "third", "command": "true"})

    result = run_cli(db_path, "enqueue", "-", "--json", input=text)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    ids = json.loads(result.stdout)
    assert isinstance(ids, list) and len(ids) == 3
    assert (ids[0], ids[2]) == ("first", "third")
    assert re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", ids[1])
    assert job_ids(store) == list(reversed(ids))


def test_bulk_jobs_keep_their_own_fields_and_take_the_config_max_retries_default(db_path, store):
    assert run_cli(db_path, "config", "set", "max_retries", "6").returncode == 0
    text = lines({"id": "plain", "command": "true"},
                 {"id": "custom", "command": "true", "max_retries": 1, "priority": 4, "timeout": 0.5,
                  "run_at": "2030-01-01T00:00:00+01:00"})

    assert run_cli(db_path, "enqueue", "-", input=text).returncode == 0

    plain, custom = store.get_job("plain"), store.get_job("custom")
    assert (plain["max_retries"], plain["priority"], plain["timeout"]) == (6, 0, None)
    assert (custom["max_retries"], custom["priority"], custom["timeout"]) == (1, 4, 0.5)
    assert custom["run_at"] == "2029-12-31T23:00:00.000Z"


def test_bulk_enqueue_accepts_crlf_line_endings_a_byte_order_mark_and_no_final_newline(db_path, store):
    raw = b"\xef\xbb\xbf" + b'{"id":"a","command":"true"}\r\n\r\n{"id":"b","command":"true"}'

    result = run_cli(db_path, "enqueue", "-", input=raw.decode("utf-8"))

    assert result.returncode == 0, result.stderr
    assert result.stdout == "2\n"
    assert job_ids(store) == ["b", "a"]


def test_bulk_enqueue_of_many_lines_adds_them_all(db_path, store):
    text = lines(*({"id": f"job-{n}", "command": "true"} for n in range(2000)))

    result = run_cli(db_path, "enqueue", "-", input=text)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "2000\n"
    assert store.counts()["pending"] == 2000


# ---- all or nothing ------------------------------------------------------------------------------------

GOOD = {"command": "true"}

BAD_LINES = [
    # (lines, the bad line's number counted from 1 with blank lines included, words the message names)
    pytest.param([GOOD, {"command": "true", "colour": "red"}], 2, ["colour"], id="unknown-key"),
    pytest.param([GOOD, "", '{"command":"true","max_retries":1.0}'], 3, ["max_retries"],
                 id="float-max_retries-after-a-blank-line"),
    pytest.param(["", "", "", GOOD, '{"command":"true","max_retries":"3"}'], 5, ["max_retries"],
                 id="string-max_retries-after-three-blank-lines"),
    pytest.param(['{"command":"true"'], 1, ["JSON"], id="invalid-json-on-the-first-line"),
    pytest.param([GOOD, '[{"command":"true"}]'], 2, ["object"], id="json-array"),
    pytest.param([GOOD, '{"command":"true","delay":NaN}'], 2, ["delay"], id="nan-delay"),
    pytest.param([GOOD, {"id": "job1"}], 2, ["command"], id="missing-command"),
    pytest.param([GOOD, {"command": ""}], 2, ["command"], id="empty-command"),
    pytest.param([GOOD, {"command": "true", "timeout": 0}], 2, ["timeout"], id="zero-timeout"),
    pytest.param([GOOD, {"command": "true", "delay": -1}], 2, ["delay"], id="negative-delay"),
    pytest.param([GOOD, {"command": "true", "priority": True}], 2, ["priority"], id="boolean-priority"),
    pytest.param([GOOD, {"command": "true", "id": "a b"}], 2, ["id"], id="bad-id-characters"),
    pytest.param([GOOD, {"command": "true", "id": "x" * 129}], 2, ["id"], id="id-of-129-characters"),
    pytest.param([GOOD, {"command": "true", "run_at": "2030-01-01T00:00:00"}], 2, ["run_at"],
                 id="run_at-without-zone"),
    pytest.param([GOOD, {"command": "true", "run_at": "2030-01-01T00:00:00Z", "delay": 1}], 2, ["run_at", "delay"],
                 id="run_at-and-delay-together"),
    pytest.param([GOOD] * 9 + [{"command": "true", "max_retries": -1}], 10, ["max_retries"], id="tenth-line"),
]


@pytest.mark.parametrize(("job_lines", "number", "named"), BAD_LINES)
def test_one_bad_line_adds_nothing_exits_2_and_names_the_line_and_the_key(db_path, store, job_lines, number, named):
    result = run_cli(db_path, "enqueue", "-", input=lines(*job_lines))

    assert_refused(result, 2, *named)
    assert names_line(result, number), result.stderr
    assert job_ids(store) == []


def test_a_line_of_undecodable_bytes_adds_nothing_and_is_named(db_path, store, tmp_path):
    jobs_file = tmp_path / "jobs.jsonl"
    jobs_file.write_bytes(b'{"command":"true"}\n{"command":"echo \xff"}\n')

    result = run_cli(db_path, "enqueue", "--file", str(jobs_file))

    assert_refused(result, 2, "UTF-8")
    assert names_line(result, 2), result.stderr
    assert job_ids(store) == []


def test_a_bad_last_line_after_thousands_of_good_ones_adds_nothing(db_path, store):
    text = lines(*([GOOD] * 3000), {"command": "true", "max_retries": 2.5})

    result = run_cli(db_path, "enqueue", "-", input=text)

    assert_refused(result, 2, "max_retries")
    assert names_line(result, 3001), result.stderr
    assert job_ids(store) == []


def test_a_bad_file_leaves_the_jobs_already_queued_alone(db_path, store):
    store.enqueue(check_job({"id": "old", "command": "true"}))

    result = run_cli(db_path, "enqueue", "-", input=lines({"id": "new", "command": "true"}, {"command": 1}))

    assert_refused(result, 2, "command")
    assert job_ids(store) == ["old"]


def test_an_id_repeated_within_the_file_adds_nothing_and_names_the_id_and_the_line(db_path, store):
    text = lines({"id": "a", "command": "true"}, {"id": "b", "command": "true"}, {"id": "a", "command": "false"})

    result = run_cli(db_path, "enqueue", "-", input=text)

    # The input contradicts itself whatever the queue holds: bad input, exit 2.
    assert_refused(result, 2, "'a'")
    assert names_line(result, 3), result.stderr
    assert job_ids(store) == []


def test_an_id_that_is_already_queued_adds_nothing_exits_1_and_names_the_id_and_the_line(db_path, store):
    store.enqueue(check_job({"id": "taken", "command": "echo original"}))
    text = lines({"id": "free", "command": "true"}, "", {"id": "taken", "command": "echo replacement"})

    result = run_cli(db_path, "enqueue", "-", input=text)

    # As for a single enqueue, a clash with the queue's contents is "could not be done": exit 1.
    assert_refused(result, 1, "taken")
    assert names_line(result, 3), result.stderr
    assert job_ids(store) == ["taken"]
    assert store.get_job("taken")["command"] == "echo original"


# ---- bad usage -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [pytest.param("", id="empty"), pytest.param("\n \n\t\n", id="only-blank-lines")])
def test_input_without_any_job_exits_2_and_adds_nothing(db_path, store, text):
    result = run_cli(db_path, "enqueue", "-", input=text)

    assert_refused(result, 2)
    assert job_ids(store) == []


def test_a_missing_file_exits_2_naming_it(db_path, store, tmp_path):
    missing = tmp_path / "no-such-file.jsonl"

    result = run_cli(db_path, "enqueue", "--file", str(missing))

    assert result.returncode == 2, result.stderr
    assert_no_traceback(result)
    assert "no-such-file.jsonl" in result.stderr
    assert job_ids(store) == []


def test_a_directory_as_the_file_exits_2(db_path, store, tmp_path):
    result = run_cli(db_path, "enqueue", "--file", str(tmp_path))

    assert result.returncode == 2, result.stderr
    assert_no_traceback(result)
    assert job_ids(store) == []


def test_a_json_job_and_a_file_together_exit_2_and_add_nothing(db_path, store, tmp_path):
    jobs_file = tmp_path / "jobs.jsonl"
    jobs_file.write_text(lines({"id": "from-file", "command": "true"}))

    result = run_cli(db_path, "enqueue", '{"id":"from-argument","command":"true"}', "--file", str(jobs_file))

    assert result.returncode == 2, result.stderr
    assert_no_traceback(result)
    assert job_ids(store) == []


def test_bulk_enqueue_into_an_unusable_database_exits_1(tmp_path):
    directory = tmp_path / "a-directory"
    directory.mkdir()

    result = run_cli(directory, "enqueue", "-", input=lines(GOOD))

    assert_refused(result, 1, str(directory))


def test_bulk_enqueue_honours_the_db_option(db_path, tmp_path):
    other = tmp_path / "other.db"

    result = run_cli(other, "--db", str(db_path), "enqueue", "-", input=lines({"id": "a", "command": "true"}))

    assert result.returncode == 0, result.stderr
    assert [job["id"] for job in cli_json(db_path, "list")] == ["a"]
    assert cli_json(other, "list") == []
