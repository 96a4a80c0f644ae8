"""Control characters in user data never reach the operator's terminal raw (issue 13, item 10).

The CLI runs as a real process on a pseudo-terminal (stdout and stderr are a pty, so isatty() is true), against
jobs whose command and output hold escape sequences (CSI, OSC 52 clipboard writes), carriage returns, BEL,
backspace, C1 controls and bidi overrides, run by a real worker whose host name holds some too. What the terminal
receives must show them as escapes; into a pipe `logs` still gives the output as stored, and --json stays JSON.
"""

import json
import os
import select
import subprocess
import threading
import tty

import pytest
from helpers import QUEUECTL, QUIET, cli_json, wait_for

# The pieces a hostile job would use, and how the CLI must show each of them.
HOSTILE = {
    "\x1b]52;c;aGk=\x07": "\\x1b]52;c;aGk=\\x07",  # OSC 52: write "hi" to the clipboard
    "\x1b[2J": "\\x1b[2J",  # clear the screen
    "\r": "\\r",  # back to the line's start, to overwrite it
    "\x08": "\\x08",  # backspace
    "\x9b2J": "\\x9b2J",  # the C1 (8-bit) CSI
    "\u202e": "\\u202e",  # right-to-left override
    "\u2066": "\\u2066",  # left-to-right isolate
    "\x7f": "\\x7f",  # DEL
}
NASTY = "A" + "B".join(HOSTILE) + "Z"
NASTY_SHOWN = "A" + "B".join(HOSTILE.values()) + "Z"
# The job prints NASTY (its raw characters travel inside a single-quoted shell word), a tab and a newline.
NASTY_COMMAND = f"printf '%s\\n' '{NASTY}'; printf 'x\\ty\\n'"
NASTY_OUTPUT = f"{NASTY}\nx\ty\n"
HOSTILE_HOST = "host\x1b[5m\u202e"


def raw_controls(text):
    """The characters of `text` a terminal could act on, other than newline and tab."""
    return [character for character in text if character not in "\n\t" and (
        ord(character) < 0x20 or 0x7f <= ord(character) <= 0x9f
        or 0x202a <= ord(character) <= 0x202e or 0x2066 <= ord(character) <= 0x2069)]


class Terminal:
    """`queuectl ARGS` with stdout and stderr on a new pseudo-terminal, read as it writes."""

    def __init__(self, db_path, *args, env=None):
        self.master, slave = os.openpty()
        tty.setraw(slave)  # no newline translation: the test sees the bytes the CLI wrote
        self.process = subprocess.Popen(
            [QUEUECTL, *args], stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, start_new_session=True,
            env={**os.environ, "QUEUECTL_DB": str(db_path), **(env or {})})
        os.close(slave)
        self.data = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        while True:
            select.select([self.master], [], [], 1.0)
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: every holder of the slave side closed it (the CLI exited)
                return
            if not chunk:
                return
            self.data += chunk

    def text(self):
        """What the terminal received so far, decoded (it is UTF-8 throughout)."""
        return bytes(self.data).decode("utf-8")

    def finish(self, timeout=30):
        """Wait for the CLI to exit; its exit code and everything it wrote."""
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout)
        os.close(self.master)
        return code, self.text()


def on_terminal(db_path, *args, env=None):
    """(exit code, text) of `queuectl ARGS` run on a terminal to its end."""
    return Terminal(db_path, *args, env=env).finish()


def assert_shown_escaped(text, *expected):
    """No raw control reached the terminal, and every expected escaped form did."""
    assert raw_controls(text) == [], text
    for shown in expected:
        assert shown in text, (shown, text)


@pytest.fixture
def ran_nasty_jobs(db_path, store, processes):
    """A completed job and a dead one with hostile commands and output, run by a live worker with a hostile
    host name (it stays live for `worker list` and `status`)."""
    from queuectl_core.validation import check_job

    store.enqueue(check_job({"id": "nasty", "command": f"{NASTY_COMMAND}\n# second line"}))
    store.enqueue(check_job({"id": "two-lines", "command": "true\ntrue"}))
    store.enqueue(check_job({"id": "doomed", "command": f"{NASTY_COMMAND}; exit 3", "max_retries": 0}))
    processes.start_workers(db_path, env={**QUIET, "QUEUECTL_HOST": HOSTILE_HOST})
    ended = {"nasty": "completed", "two-lines": "completed", "doomed": "dead"}
    wait_for(lambda: {name: store.get_job(name)["state"] for name in ended} == ended,
             timeout=30, message="the jobs to end")
    wait_for(lambda: store.live_workers(), message="the worker to be listed")
    return db_path


@pytest.mark.parametrize("args", [
    pytest.param(["list"], id="list"),
    pytest.param(["list", "--state", "dead"], id="list-dead"),
    pytest.param(["dlq", "list"], id="dlq-list"),
])
def test_job_tables_on_a_terminal_show_commands_with_controls_escaped_one_line_per_job(ran_nasty_jobs, args):
    code, text = on_terminal(ran_nasty_jobs, *args)

    assert code == 0, text
    rows = text.splitlines()[1:]
    assert_shown_escaped(text, "printf '%s\\n' 'A\\x1b]52;c;aGk=\\x07B")
    assert all(row.split()[0] in ("nasty", "two-lines", "doomed") for row in rows), text  # no command broke a row


def test_list_shows_a_newline_of_a_command_as_backslash_n(ran_nasty_jobs):
    code, text = on_terminal(ran_nasty_jobs, "list", "--state", "completed")

    assert code == 0 and len(text.splitlines()) == 3, text
    assert_shown_escaped(text, "  true\\ntrue\n", "printf '%s\\n' 'A\\x1b]52")


def test_show_on_a_terminal_escapes_the_command_worker_and_output_but_keeps_output_lines(ran_nasty_jobs):
    code, text = on_terminal(ran_nasty_jobs, "show", "nasty")

    assert code == 0, text
    assert_shown_escaped(text, f"command:     printf '%s\\n' '{NASTY_SHOWN}'; printf 'x\\ty\\n'\\n# second line",
                         f"on {HOSTILE_HOST.encode('unicode_escape').decode()}",
                         f"      | {NASTY_SHOWN}\n", "      | x\ty\n")


def test_logs_on_a_terminal_shows_controls_escaped_and_keeps_newlines_and_tabs(ran_nasty_jobs):
    code, text = on_terminal(ran_nasty_jobs, "logs", "nasty")

    assert code == 0, text
    assert text == f"{NASTY_SHOWN}\nx\ty\n"


def test_logs_into_a_pipe_gives_the_output_exactly_as_stored(ran_nasty_jobs):
    result = subprocess.run([QUEUECTL, "logs", "nasty"], capture_output=True, timeout=30,
                            env={**os.environ, "QUEUECTL_DB": str(ran_nasty_jobs)})

    assert result.returncode == 0, result.stderr
    assert result.stdout == NASTY_OUTPUT.encode()  # bytes: text mode would turn the \r into a newline


@pytest.mark.parametrize("args", [
    pytest.param(["worker", "list"], id="worker-list"),
    pytest.param(["status"], id="status"),  # SQLite: the click-free quick path
])
def test_worker_tables_on_a_terminal_show_a_hostile_host_escaped(ran_nasty_jobs, args):
    code, text = on_terminal(ran_nasty_jobs, *args)

    assert code == 0, text
    assert_shown_escaped(text, "host\\x1b[5m\\u202e")


def test_show_json_on_a_terminal_is_the_same_json_with_no_raw_control(ran_nasty_jobs):
    code, text = on_terminal(ran_nasty_jobs, "show", "nasty", "--json")

    assert code == 0, text
    assert raw_controls(text) == [], text
    record = json.loads(text)
    assert record == cli_json(ran_nasty_jobs, "show", "nasty")  # through a pipe: the very same value
    assert record["history"][0]["output"] == NASTY_OUTPUT


@pytest.mark.parametrize("args", [["status", "--json"], ["worker", "list", "--json"]])
def test_workers_json_on_a_terminal_has_the_host_as_stored_and_no_raw_control(ran_nasty_jobs, args):
    code, text = on_terminal(ran_nasty_jobs, *args)

    assert code == 0, text
    assert raw_controls(text) == [], text
    workers = json.loads(text)
    workers = workers["workers"] if args[0] == "status" else workers
    assert [worker["host"] for worker in workers] == [HOSTILE_HOST]


def test_logs_follow_on_a_terminal_escapes_output_as_it_streams(db_path, store, processes, tmp_path):
    from queuectl_core.validation import check_job

    gate = tmp_path / "gate"
    store.enqueue(check_job({"id": "live", "command": (
        f"{NASTY_COMMAND}; while [ ! -e '{gate}' ]; do sleep 0.05; done; printf '%s\\n' '{NASTY}'")}))
    following = Terminal(db_path, "logs", "--follow", "live")
    processes.start_workers(db_path, env=QUIET)

    wait_for(lambda: "x\ty\n" in following.text(), timeout=30, message="the first lines to stream")
    gate.touch()
    code, text = following.finish()

    assert code == 0, text
    assert_shown_escaped(text)
    assert text.endswith(f"{NASTY_SHOWN}\nx\ty\n{NASTY_SHOWN}\n"), text


@pytest.mark.parametrize("args, code, shown", [
    pytest.param(["show", "x\x1b]52;c;aGk=\x07"], 1, "no job with id 'x\\x1b]52;c;aGk=\\x07'", id="unknown-id"),
    pytest.param(["logs", "x\x1b[2J\u202e"], 1, "'x\\x1b[2J\\u202e'", id="logs-unknown-id"),
    pytest.param(["enqueue", '{"command":"true","k\\u001b[2J\\u009b":1}'], 2, "unknown key 'k\\x1b[2J\\x9b'",
                 id="bad-json-key"),
    pytest.param(["\x1b[2Jstatus"], 2, "No such command '\\x1b[2Jstatus'", id="unknown-command"),
    pytest.param(["show", "--\x1b[2J"], 2, "No such option '--\\x1b[2J'", id="unknown-option"),
])
def test_error_messages_on_a_terminal_show_the_user_data_they_quote_escaped(db_path, args, code, shown):
    exit_code, text = on_terminal(db_path, *args)

    assert exit_code == code, text
    assert "Traceback" not in text
    assert_shown_escaped(text, shown)
