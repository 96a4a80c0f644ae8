"""Hostile input: property tests of the job validator, the settings check and the bulk parser, and the CLI fuzzed
with random arguments. Whatever comes in, the answer is a clean value or InvalidInput (exit 2 on the command line),
never another exception or a traceback.
"""

import dataclasses
import json
import math
import os
import re
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner
from helpers import QUEUECTL
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from queuectl_cli.bulk import parse_lines
from queuectl_cli.main import cli
from queuectl_core import settings as settings_module
from queuectl_core.errors import InvalidInput
from queuectl_core.store import open_store
from queuectl_core.validation import KEYS, JobSpec, check_job, parse_job_json

QUICK = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)

# Any unicode: the default text strategy leaves out lone surrogates, which a JSON "\ud800" escape and undecodable
# bytes on a command line (surrogateescape) both produce.
ANY_CHARACTER = st.characters(exclude_categories=())
ANY_TEXT = st.text(ANY_CHARACTER, max_size=40)
# Integers of 5000 digits are made by the strategy: hypothesis cannot even repr one (Python's 4300-digit limit).
BIG_INTEGERS = st.sampled_from([5000, -5000]).map(lambda digits: 10**digits if digits > 0 else -(10**-digits))
HUGE_NUMBERS = BIG_INTEGERS | st.sampled_from([
    2**63, 2**63 - 1, -(2**63), 2**64, 10**20, 1e308, -1e308, 5e-324, -0.0,
    float("inf"), float("-inf"), float("nan"), 2**31, -(2**31), 316224001, 1_000_001,
])
NUMBERS = st.integers() | st.floats() | HUGE_NUMBERS
SCALARS = st.none() | st.booleans() | NUMBERS | ANY_TEXT
JSON_VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4), max_leaves=12
)


def nested(value, depth, kind):
    """`value` inside `depth` lists or single-key objects (built without recursion: any depth)."""
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


# Deep nesting around the recursion limit (where json.loads stops and json.dumps of an error message started to
# fail) and far beyond it.
DEEP = st.builds(nested, SCALARS, st.sampled_from([1, 50, 900, 975, 980, 983, 985, 990, 1000, 5000, 100_000]),
                 st.sampled_from(["list", "object"]))
VALUES = JSON_VALUES | DEEP | HUGE_NUMBERS
JOB_KEYS = st.sampled_from(KEYS) | ANY_TEXT
# Mostly objects with a command, so that the checks of the other keys are reached.
JOBS = (
    st.dictionaries(JOB_KEYS, VALUES, max_size=6)
    | st.fixed_dictionaries({"command": st.sampled_from(["true", "echo hi"]) | ANY_TEXT},
                            optional={key: VALUES for key in KEYS if key != "command"})
    | VALUES
)


def to_json(value):
    """`value` as JSON text; what json.dumps cannot write (too deep, an integer of over 4300 digits) as a text that
    is just as hostile."""
    try:
        return json.dumps(value)
    except (RecursionError, ValueError):
        return '{"command": "x", "priority": ' + "[" * 5000 + "1" + "]" * 5000 + "}"


def checked_or_refused(function, *args):
    """Call `function`; return its value, or None when it raised InvalidInput (anything else fails the test)."""
    try:
        return function(*args)
    except InvalidInput as error:
        assert str(error)
        return None


# ---- the job validator ---------------------------------------------------------------------------------------


@QUICK
@given(JOBS)
def test_check_job_gives_a_clean_spec_or_invalid_input_for_any_json_value(value):
    spec = checked_or_refused(check_job, value)
    if spec is not None:
        assert isinstance(spec, JobSpec)
        assert isinstance(spec.command, str) and spec.command.strip() and "\x00" not in spec.command
        spec.command.encode("utf-8")  # storable and runnable text
        assert spec.max_retries is None or (type(spec.max_retries) is int and spec.max_retries >= 0)
        assert type(spec.priority) is int and abs(spec.priority) < 2**31
        for seconds in (spec.timeout, spec.delay_ms):
            assert seconds is None or (not isinstance(seconds, bool) and math.isfinite(seconds) and seconds >= 0)


@QUICK
@given(st.text(ANY_CHARACTER) | JOBS.map(to_json) | st.sampled_from([
    '{"command": "x", "priority": 1' + "0" * 5000 + "}", '{"command": "x", "delay": 1e999}', "[" * 100_000,
    '{"command": "\\ud800"}', '{"command": "x", "id": "\\udcff"}', "\ufeff{}", '{"command": "x"} {}',
]))
def test_parse_job_json_gives_a_clean_spec_or_invalid_input_for_any_text(text):
    checked_or_refused(parse_job_json, text)


@pytest.mark.parametrize("key", ["priority", "max_retries", "delay", "timeout", "run_at", "id", "command"])
def test_a_value_nested_just_below_the_json_recursion_limit_is_refused_naming_its_key(key):
    # These depths parse, but rendering the bad value for the message used to overflow the stack: exit 1 with
    # "internal error" from the CLI and a 500 from the API.
    for depth in range(960, 1000):
        text = f'{{"command": "x", "{key}": ' + "[" * depth + "1" + "]" * depth + "}"
        try:
            parse_job_json(text) if key != "command" else parse_job_json(text.replace('"command": "x", ', ""))
        except InvalidInput as error:
            assert "JSON" in str(error) or key in str(error)


def test_huge_integers_are_refused_by_key_not_with_a_crash():
    for key in ("priority", "max_retries", "delay", "timeout"):
        with pytest.raises(InvalidInput, match=key):
            check_job({"command": "x", key: 10**5000})


@pytest.mark.parametrize("line", [
    b'{"command": "' + b"x" * 10_000_000 + b'"}',  # a command of 10 MB: over the 1 MB limit
    b"[" * 10_000_000,
    b"9" * 10_000_000,
    b" " * 10_000_000 + b'{"command": "true"}',
    b'{"command": "true", "id": "' + b"a" * 10_000_000 + b'"}',
    b'"' + b"\\ud800" * 1_000_000 + b'"',
], ids=["long-command", "deep", "digits", "spaces-then-a-job", "long-id", "surrogates"])
def test_a_ten_megabyte_line_gives_a_clean_spec_or_invalid_input(line):
    specs = checked_or_refused(parse_lines, line)
    if specs is not None:
        assert specs == [(1, JobSpec(command="true"))]


# ---- accepted specs can be stored --------------------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(JOBS)
def test_every_spec_the_validator_accepts_can_be_stored_and_read_back(tmp_path_factory, value):
    spec = checked_or_refused(check_job, value)
    if spec is None or getattr(spec, "after", ()):
        return  # dependencies name other jobs: the store checks that they exist
    store = _scratch_store(tmp_path_factory)
    record = store.enqueue(dataclasses.replace(spec, id=None))  # ids repeat across examples
    assert store.get_job(record["id"])["command"] == spec.command


_stores = {}


def _scratch_store(tmp_path_factory):
    if "store" not in _stores:
        _stores["store"] = open_store(str(tmp_path_factory.mktemp("hostile") / "queue.db"))
    return _stores["store"]


# ---- settings ------------------------------------------------------------------------------------------------


@QUICK
@given(st.sampled_from(sorted(settings_module.SETTINGS)) | ANY_TEXT | st.sampled_from([None, 1, ("a",)]),
       VALUES | ANY_TEXT | st.sampled_from(["9" * 5000, "1e400", " 5 ", "nan", "-inf", "1_0", "٣", "0x10", "5.0"]))
def test_settings_check_gives_a_clean_value_or_invalid_input(name, value):
    clean = checked_or_refused(settings_module.check, name, value)
    if clean is not None:
        setting = settings_module.SETTINGS[name]
        if setting.kind == "choice":
            assert clean in setting.choices
        else:
            assert not isinstance(clean, bool) and isinstance(clean, int | float) and math.isfinite(clean)
            assert settings_module.check(name, clean) == clean  # a stored value checks again as itself
            json.dumps(clean)


# ---- the bulk parser -----------------------------------------------------------------------------------------

LINE_ENDS = st.sampled_from([b"\n", b"\r\n", b"\n\n", b"\n  \n", b"\r", b"\x85", "\u2028".encode()])
JSON_LINES = st.lists(
    st.tuples(JOBS.map(lambda value: to_json(value).encode("utf-8", "surrogatepass")) | st.binary(max_size=30),
              LINE_ENDS),
    max_size=6,
).map(lambda parts: b"".join(line + end for line, end in parts))


@QUICK
@given(JSON_LINES | st.binary() | JSON_LINES.map(lambda raw: b"\xef\xbb\xbf" + raw))
def test_parse_lines_gives_numbered_specs_or_invalid_input_naming_a_line(raw):
    try:
        specs = parse_lines(raw)
    except InvalidInput as error:
        assert re.match(r"line \d+: ", str(error)), str(error)
        return
    numbers = [number for number, _ in specs]
    assert numbers == sorted(set(numbers))
    assert all(isinstance(spec, JobSpec) for _, spec in specs)


# ---- the command line, fuzzed --------------------------------------------------------------------------------

# Left out of the fuzz: `worker start` replaces the process with a worker; `migrate --to` would connect to wherever
# a random URL points; options that follow output wait for a job to finish.
SKIPPED_COMMANDS = {("worker", "start"), ("migrate",)}
SKIPPED_OPTIONS = {"--follow", "--wait", "--db"}


def _commands(group, path=()):
    for name, command in group.commands.items():
        if path + (name,) in SKIPPED_COMMANDS:
            continue
        if isinstance(command, click.Group):
            yield from _commands(command, path + (name,))
        else:
            yield path + (name,), command


COMMANDS = list(_commands(cli))
OPTION_NAMES = sorted({opt for _, command in COMMANDS for param in command.params if isinstance(param, click.Option)
                       for opt in param.opts if opt not in SKIPPED_OPTIONS} | {"--help", "-h", "--version", "--json"})
TOKENS = st.sampled_from(OPTION_NAMES) | st.sampled_from(
    ["-", "--", "", " ", "0", "-1", "1.5", "nan", "inf", "1e309", "99999999999999999999999", "pending", "dead",
     "max_retries", "backoff_base", "lease_timeout", "durability", "full", '{"command": "true"}', "{", "\udcff",
     "job-1", "../etc/passwd", "/nonexistent/file"]
) | ANY_TEXT.map(lambda text: text.replace("\x00", "")) | JOBS.map(lambda value: to_json(value)[:2000])


def _value(param):
    """A value for `param`: mostly one of the right kind (so that the command runs), else anything."""
    kind = param.type
    if isinstance(kind, click.Choice):
        right = st.sampled_from([str(choice) for choice in kind.choices])
    elif isinstance(kind, click.types.IntParamType):
        right = st.integers(-5, 10**6).map(str)
    elif isinstance(kind, click.types.FloatParamType):
        right = st.floats(allow_nan=True).map(repr)
    elif param.name in ("key",):
        right = st.sampled_from(sorted(settings_module.SETTINGS))
    else:
        right = st.sampled_from(["job-1", "-", '{"command": "true", "id": "job-1"}', "1", "full"])
    return st.one_of(right, right, TOKENS)


def _invocation(path, command):
    """Arguments for `command`: its arguments and some of its options, in a random order, now and then extra."""
    parts = []
    for param in command.params:
        if isinstance(param, click.Argument):
            parts.append(_value(param).map(lambda value: [value]))
        elif param.opts[0] not in SKIPPED_OPTIONS:
            option = param.opts[0]
            taken = st.just([option]) if param.is_flag else _value(param).map(lambda value, o=option: [o, value])
            parts.append(st.one_of(st.just([]), taken))
    return st.tuples(st.tuples(*parts) if parts else st.just(()), st.lists(TOKENS, max_size=1)).map(
        lambda found: list(path) + [arg for part in found[0] for arg in part] + found[1])


ARGUMENTS = st.one_of(
    st.lists(TOKENS, max_size=6),
    st.tuples(st.sampled_from([list(path) for path, _ in COMMANDS]), st.lists(TOKENS, max_size=5)).map(
        lambda parts: parts[0] + parts[1]),
    *(_invocation(path, command) for path, command in COMMANDS),
    *(_invocation(path, command) for path, command in COMMANDS),
).filter(lambda args: not any(tuple(args[:len(path)]) == path for path in SKIPPED_COMMANDS)
         and not any(arg in SKIPPED_OPTIONS for arg in args))
STDIN = st.sampled_from([b"", b'{"command": "true"}\n', b"\xff\n", b"{\n"]) | JSON_LINES


def test_the_cli_fuzz_reaches_every_command():
    assert {"enqueue", "status", "list", "show", "dlq", "config", "worker"} <= {path[0] for path, _ in COMMANDS}


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(args=ARGUMENTS, stdin=STDIN)
def test_the_cli_never_raises_and_exits_0_1_or_2_whatever_the_arguments(tmp_path_factory, args, stdin):
    database = str(_scratch_dir(tmp_path_factory) / "fuzz.db")
    result = CliRunner().invoke(cli, args, input=stdin, env={"QUEUECTL_DB": database}, prog_name="queuectl")
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, repr(result.exception))
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.output)
    assert "Traceback" not in result.output
    event(f"exit {result.exit_code}")


_dirs = {}


def _scratch_dir(tmp_path_factory):
    if "dir" not in _dirs:
        _dirs["dir"] = tmp_path_factory.mktemp("cli-fuzz")
    return _dirs["dir"]


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(args=ARGUMENTS)
def test_the_real_queuectl_process_never_prints_a_traceback_whatever_the_arguments(tmp_path_factory, args):
    # argv is bytes at the OS level: any lone surrogate hypothesis draws is sent as the bytes it stands for
    # (os.fsencode refuses those outside surrogateescape's U+DC80-U+DCFF: the test itself failed, now and then).
    argv = [QUEUECTL, *(arg.encode("utf-8", "surrogatepass") for arg in args)]
    env = {**os.environ, "QUEUECTL_DB": str(_scratch_dir(tmp_path_factory) / "real.db")}
    env.pop("QUEUECTL_DEBUG", None)
    result = subprocess.run(argv, capture_output=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
    output = result.stdout + result.stderr
    assert b"Traceback" not in output, (args, output[-2000:])
    assert b"internal error" not in output, (args, output[-2000:])
    assert result.returncode in (0, 1, 2), (args, result.returncode, output[-2000:])


@pytest.mark.parametrize("args", [["logs", "job-1", "--attempt", "9" * 23], ["list", "--offset", "9" * 23]])
def test_an_integer_option_too_big_for_the_database_is_a_usage_error_not_a_crash(tmp_path, args):
    # The fuzz found these: SQLite takes 64-bit integers only ("Python int too large to convert").
    result = CliRunner().invoke(cli, args, env={"QUEUECTL_DB": str(tmp_path / "q.db")}, prog_name="queuectl")
    assert result.exit_code == 2, (result.exception, result.output)
    assert "is not in the range" in result.output


@pytest.mark.parametrize("depth", [982, 983, 984])
def test_the_cli_refuses_a_job_nested_at_the_recursion_limit_with_exit_2(tmp_path, depth):
    job = '{"command": "x", "priority": ' + "[" * depth + "1" + "]" * depth + "}"
    result = subprocess.run([QUEUECTL, "enqueue", job], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "QUEUECTL_DB": str(tmp_path / "q.db")})
    assert result.returncode == 2, result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
