"""The fast paths of bulk enqueue give exactly what the full paths give: the same JobSpec, the same error.

check_job checks the usual job shape in a fast path (validation._check_plain), parse_job_json decodes the usual
line with json's scanner directly (validation._loads), and parse_lines decodes the whole input at once. Each is
compared here with the full path it stands for, on tricky input: a difference in a result or a message fails.
"""

import codecs
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from queuectl_cli.bulk import parse_lines
from queuectl_core import validation
from queuectl_core.errors import InvalidInput
from queuectl_core.validation import check_job, parse_job_json


def outcome(function, *args):
    """('ok', result) or ('error', its type and message), for comparing two paths."""
    try:
        return ("ok", function(*args))
    except Exception as error:  # noqa: BLE001 - any difference, of any kind, must show
        return ("error", type(error).__name__, str(error))


def full_check(value):
    """check_job without its fast path."""
    original = validation._check_plain
    validation._check_plain = lambda value: None
    try:
        return outcome(check_job, value)
    finally:
        validation._check_plain = original


def old_parse_lines(raw):
    """parse_lines as it was before the fast paths: line by line, each decoded and parsed by json.loads."""
    specs = []
    if raw.startswith(codecs.BOM_UTF8):
        raw = raw[len(codecs.BOM_UTF8):]
    for number, line in enumerate(raw.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"line {number}: not valid UTF-8") from None
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as error:
            raise InvalidInput(f"line {number}: not valid JSON: {validation._short(error)}") from None
        try:
            specs.append((number, full_check_or_raise(value)))
        except InvalidInput as error:
            raise InvalidInput(f"line {number}: {error}") from None
    return specs


def full_check_or_raise(value):
    result = full_check(value)
    if result[0] == "error":
        raise InvalidInput(result[2])
    return result[1]


JOBS = [
    {"command": "true"},
    {"command": "echo hi", "id": "job-1", "max_retries": 0, "priority": -5},
    {"command": "x", "priority": 2**31 - 1, "max_retries": 1_000_000},
    {"command": "x", "priority": -(2**31 - 1)},
    # Out of range, just past each bound.
    {"command": "x", "priority": 2**31},
    {"command": "x", "priority": -(2**31)},
    {"command": "x", "max_retries": 1_000_001},
    {"command": "x", "max_retries": -1},
    {"command": "x", "priority": 10**400},  # an integer too large to show in full
    # Booleans are ints to Python, never to the contract; floats and strings of numbers are not integers.
    {"command": "x", "priority": True},
    {"command": "x", "max_retries": False},
    {"command": "x", "priority": 1.0},
    {"command": "x", "max_retries": 2.5},
    {"command": "x", "priority": "1"},
    {"command": "x", "priority": float("nan")},
    # Nulls: refused for every key, where get() would see "absent".
    {"command": "x", "id": None},
    {"command": "x", "max_retries": None},
    {"command": "x", "priority": None},
    {"command": None},
    # Commands.
    {"command": ""},
    {"command": "   \t"},
    {"command": "\u00a0\u2003"},  # only Unicode spaces: blank to str.strip()
    {"command": "echo \x00"},
    {"command": "echo \ud800"},  # a lone surrogate from a JSON escape
    {"command": "echo héllo ☃ 𝄞"},
    {"command": "x" * 1_000_000},
    {"command": "x" * 1_000_001},
    {"command": ["echo", "x"]},
    {"command": {"nested": "object"}},
    {"command": 5},
    # Ids.
    {"command": "x", "id": ""},
    {"command": "x", "id": "a" * 128},
    {"command": "x", "id": "a" * 129},
    {"command": "x", "id": "with space"},
    {"command": "x", "id": "naïve"},
    {"command": "x", "id": "line\n"},  # re's $ would match before a final newline; fullmatch must not
    {"command": "x", "id": 12},
    # Keys outside the fast path's set, known and unknown.
    {"command": "x", "timeout": 5},
    {"command": "x", "delay": 0},
    {"command": "x", "run_at": "2030-01-01T00:00:00Z"},
    {"command": "x", "after": []},
    {"command": "x", "retry_on": [2]},
    {"command": "x", "bogus": 1},
    {"command": "x", "Command": "y"},
    {"id": "no-command"},
    {},
    # Not objects at all.
    [],
    ["command", "x"],
    "command",
    5,
    None,
    True,
]


@pytest.mark.parametrize("value", JOBS, ids=lambda value: repr(value)[:60])
def test_check_job_gives_what_the_full_check_gives(value):
    assert outcome(check_job, value) == full_check(value)


def test_the_fast_path_takes_the_usual_job_and_leaves_the_rest():
    # Otherwise the comparisons above would compare the full check with itself.
    assert validation._check_plain({"command": "echo 1", "id": "a", "priority": 1, "max_retries": 2}) is not None
    assert validation._check_plain({"command": "x", "priority": True}) is None
    assert validation._check_plain({"command": "x", "timeout": 1}) is None


def test_the_fast_path_builds_the_jobspec_its_constructor_builds():
    # It fills the instance's fields itself: a field added to JobSpec (or a __post_init__) must not be missed.
    fast = validation._check_plain({"command": "c", "id": "i", "max_retries": 1, "priority": 2})
    built = validation.JobSpec(command="c", id="i", max_retries=1, priority=2)
    assert type(fast) is validation.JobSpec and vars(fast) == vars(built) and hash(fast) == hash(built)
    assert not hasattr(validation.JobSpec, "__post_init__")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
JOB_KEYS = st.sampled_from(["command", "id", "max_retries", "priority", "timeout", "other"])
JOB_VALUES = (st.integers(min_value=-(2**32), max_value=2**32) | st.booleans() | st.none()
              | st.text(alphabet="ab -_.:\x00\u00a0é\ud800", max_size=6) | JSON_VALUES)


@settings(max_examples=500, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(JOB_KEYS, JOB_VALUES, max_size=5))
def test_check_job_gives_what_the_full_check_gives_for_drawn_jobs(value):
    assert outcome(check_job, value) == full_check(value)


TEXTS = [
    '{"command": "true"}',
    '  \t{"command": "true"}\r',
    '{"command": "true"} x',
    '{"command": "true"}{"command": "true"}',
    '{"command": "true"',
    '{"command": "true",}',
    "{'command': 'true'}",
    '\ufeff{"command": "true"}',
    '{"command": "true"}\x0b',  # not JSON whitespace
    '\x0c{"command": "true"}',
    '{"command": "tr\\u00e9", "priority": 1e2}',
    '{"command": "x", "priority": NaN}',
    '{"command": "x", "priority": -Infinity}',
    '{"command": "\\ud800"}',
    '{"command": "a", "command": "b"}',  # a repeated key: the last wins in both
    '{"a": ' * 100_000 + "1" + "}" * 100_000,  # too deep to decode
    '{"command": "x", "priority": ' + "9" * 5000 + "}",  # an integer beyond int's digit limit
    '["command"]',
    '"text"',
    "1",
    "null",
    "",
    "{}",
    "{",
    "}",
]


@pytest.mark.parametrize("text", TEXTS + [b'{"command": "true"}', '{"command": "true"}'.encode("utf-16")],
                         ids=lambda text: repr(text)[:40])
def test_loads_gives_what_json_loads_gives(text):
    fast, full = outcome(validation._loads, text), outcome(json.loads, text)
    assert fast[0] == full[0]
    if fast[0] == "ok":
        assert json.dumps(fast[1]) == json.dumps(full[1])  # NaN != NaN: compare the dumped text
    else:
        assert fast == full


@pytest.mark.parametrize("text", TEXTS, ids=lambda text: repr(text)[:40])
def test_parse_job_json_gives_what_json_loads_and_the_full_check_give(text):
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as error:
        expected = ("error", "InvalidInput", f"not valid JSON: {validation._short(error)}")
    else:
        expected = full_check(value)
    assert outcome(parse_job_json, text) == expected


INPUTS = [
    b'{"command": "a"}\n{"command": "b", "priority": 1}\n',
    b'{"command": "a"}',  # no final newline
    b'\xef\xbb\xbf{"command": "a"}\n',  # a BOM
    b'\xef\xbb\xbf\xef\xbb\xbf{"command": "a"}\n',  # a second BOM is the line's, and refused
    b'{"command": "a"}\r\n\r\n{"command": "b"}\r\n',  # CRLF
    b'\n \t\n\x0b\x0c\n{"command": "a"}\n\n',  # blank lines, by bytes.strip()
    b'{"command": "a"}\n\xc2\xa0\n',  # a no-break space: blank to str.strip(), not to bytes.strip()
    b'{"command": "a"}\n\xe2\x80\xa8{"command": "b"}\n',  # U+2028: a line break to str.splitlines() only
    b'{"command": "a"}\x85{"command": "b"}\n',  # a lone byte 0x85 (not UTF-8) inside a line
    b'{"command": "a"}\n{"command": "\xff"}\n',  # undecodable bytes on line 2
    b'{"command": 1}\n{"command": "\xff"}\n',  # a bad line before the undecodable one: it is named
    b'{"command": "\xff"}\n{"command": 1}\n',  # and after
    b'{"command": "a"}\n\n{"command": "\xe2\x98"}\n{"command": "b"}\n',  # a sequence cut short
    b'{"command": "\xe2\x98\x83 snow", "id": "s"}\n',
    b'{"command": "a", "id": "x"}\n{"command": "b", "id": "x"}\n',  # repeated ids are the store's to refuse
    b'{"command": "a"} {"command": "b"}\n',
    b'{"command": "a", "priority": true}\n',
    b'{"command": "a", "timeout": 2.5, "after": ["x"], "retry_on": [3, "timeout", 3]}\n',
    b"",
    b"\n\n",
]


@pytest.mark.parametrize("raw", INPUTS, ids=lambda raw: repr(raw)[:50])
def test_parse_lines_gives_what_it_gave_line_by_line(raw):
    assert outcome(parse_lines, raw) == outcome(old_parse_lines, raw)


@settings(max_examples=300, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(INPUTS[:-2] + [b"\n", b"   ", b"\xff", b"\r"]), max_size=6))
def test_parse_lines_gives_what_it_gave_line_by_line_for_drawn_inputs(pieces):
    raw = b"".join(pieces)
    assert outcome(parse_lines, raw) == outcome(old_parse_lines, raw)
