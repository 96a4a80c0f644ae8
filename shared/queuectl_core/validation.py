"""Checking a job spec: one place used by the CLI, the API and bulk enqueue alike."""

import json
import math
import re
from dataclasses import MISSING, dataclass, fields

from .errors import InvalidInput
from .lifecycle import TIMEOUT_CODE
from .timeutil import parse_iso

ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
QUEUE_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")  # a queue's name, and each tag
KEYS = ("command", "id", "max_retries", "priority", "run_at", "delay", "timeout", "after", "retry_on", "no_retry_on",
        "queue", "tags", "unique_key", "concurrency_key", "concurrency_limit",
        "env", "cwd", "stdin", "on_success", "on_dead")
DEFAULT_QUEUE = "default"
HOOK_KEYS = ("on_success", "on_dead")
# What a hook or a schedule's job may not hold: the id, the time and (hooks) hooks of its own are queuectl's to set.
TEMPLATE_FORBIDDEN = ("id", "run_at", "delay")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Bounds that keep values inside SQLite's integers and make sense for a queue.
MAX_RETRIES_LIMIT = 1_000_000
PRIORITY_LIMIT = 2**31 - 1
SECONDS_LIMIT = 10 * 366 * 24 * 3600  # ten years
COMMAND_LIMIT = 1_000_000  # characters
AFTER_LIMIT = 100  # dependencies of one job
TAGS_LIMIT = 20  # tags of one job
UNIQUE_KEY_LIMIT = 256  # characters
CONCURRENCY_KEY_LIMIT = 128  # characters
CONCURRENCY_LIMIT_MAX = 1_000_000
ENV_LIMIT = 100  # entries of `env`
ENV_VALUE_LIMIT = 100_000  # characters of one value (Linux takes at most 128 KiB per environment string)
PATH_LIMIT = 4096  # characters of `cwd` (PATH_MAX)
STDIN_LIMIT = 1024 * 1024  # bytes of `stdin` (UTF-8)

# The fast paths below (a bulk enqueue checks each of 100k lines or more) only ever accept what the full path
# accepts, giving the same result; anything else goes through the full path, which gives the errors.
_DECODER = json.JSONDecoder()  # json.loads's own settings; its scan_once is the C scanner json.loads uses
_JSON_WHITESPACE = " \t\n\r"
_PLAIN_KEYS = frozenset(("command", "id", "max_retries", "priority", "queue"))


@dataclass(frozen=True)
class JobSpec:
    """A checked job, ready to store. None means 'use the default'."""

    command: str
    id: str | None = None
    max_retries: int | None = None
    priority: int = 0
    run_at_ms: int | None = None
    delay_ms: int | None = None
    timeout: float | None = None
    after: tuple = ()  # ids of the jobs that must complete first
    retry_on: tuple | None = None  # exit codes (and "timeout") that are retried; None: every failure
    no_retry_on: tuple | None = None  # exit codes (and "timeout") that are not retried
    queue: str = DEFAULT_QUEUE
    tags: tuple = ()
    unique_key: str | None = None  # while a job with this key is unfinished, another is not added
    concurrency_key: str | None = None
    concurrency_limit: int | None = None  # set (default 1) exactly when concurrency_key is
    env: tuple = ()  # (name, value) pairs added to the job's environment
    cwd: str | None = None  # the directory the job starts in; None: the worker's job directory
    stdin: str | None = None  # fed to the job's standard input
    on_success: str | None = None  # the hook job (checked, as JSON text) enqueued when this one completes
    on_dead: str | None = None  # ... when it ends dead
    # Set by queuectl, never by a user's JSON: the schedule and slot that made the job, the job whose hook it is.
    schedule: str | None = None
    scheduled_for_ms: int | None = None
    parent_id: str | None = None


_SPEC_DEFAULTS = {field.name: field.default for field in fields(JobSpec) if field.default is not MISSING}


def parse_job_json(text):
    """Parse one JSON job (a string) and check it; InvalidInput says what is wrong."""
    try:
        # NaN and Infinity decode to floats, which every numeric check below refuses by key.
        value = _loads(text)
    except (ValueError, RecursionError) as error:
        raise InvalidInput(f"not valid JSON: {_short(error)}") from None
    return check_job(value)


def _loads(text):
    """json.loads(text), skipping its Python-level wrapping (~2 us) for the usual text: one object, maybe within
    JSON whitespace. Anything else, errors included, goes to json.loads for its exact result and message."""
    if type(text) is not str:  # bytes: json.loads finds their encoding
        return json.loads(text)
    stripped = text.strip(_JSON_WHITESPACE)  # what json.loads skips around the value
    if stripped[:1] == "{":  # so no BOM either, which json.loads refuses
        try:
            value, end = _DECODER.scan_once(stripped, 0)
        except (StopIteration, ValueError, RecursionError):
            pass
        else:
            if end == len(stripped):  # else json.loads says "Extra data"
                return value
    return json.loads(text)


def check_job(value, hooks=True):
    """Check a decoded JSON job and return a JobSpec; InvalidInput names the bad key. `hooks=False`: a hook's own
    job, which may hold no hook."""
    spec = _check_plain(value)
    if spec is not None:
        return spec
    if not isinstance(value, dict):
        raise InvalidInput(f"a job must be a JSON object, got {_json_type(value)}")
    unknown = [key for key in value if key not in KEYS]
    if unknown:
        raise InvalidInput(f"unknown key '{unknown[0]}' (allowed: {', '.join(KEYS)})")
    if "command" not in value:
        raise InvalidInput("command is required")
    command = value["command"]
    if not isinstance(command, str) or not command.strip():
        raise InvalidInput(f"command must be a non-empty string, got {_show(command)}")
    if "\x00" in command or len(command) > COMMAND_LIMIT:
        raise InvalidInput(f"command must hold no NUL byte and at most {COMMAND_LIMIT} characters")
    if not _is_unicode_text(command):
        # A lone surrogate (a JSON "\\ud800" escape, or undecodable bytes on the command line)
        # cannot be stored or run.
        raise InvalidInput(f"command must be valid Unicode text, got {_show(command)}")
    job_id = value.get("id")
    if "id" in value and not (isinstance(job_id, str) and ID_PATTERN.fullmatch(job_id)):
        raise InvalidInput(
            f"id must be 1-128 characters of A-Z a-z 0-9 . _ : -, got {_show(job_id)}"
        )
    if "run_at" in value and "delay" in value:
        raise InvalidInput("run_at and delay cannot both be given")
    max_retries = _integer(value, "max_retries", 0, MAX_RETRIES_LIMIT)
    priority = _integer(value, "priority", -PRIORITY_LIMIT, PRIORITY_LIMIT)
    delay = _seconds(value, "delay", allow_zero=True)
    timeout = _seconds(value, "timeout", allow_zero=False)
    run_at_ms = None
    if "run_at" in value:
        run_at = value["run_at"]
        if not isinstance(run_at, str):
            raise InvalidInput(f"run_at must be an ISO-8601 timestamp string, got {_show(run_at)}")
        try:
            run_at_ms = parse_iso(run_at)
        except (ValueError, OverflowError) as error:
            raise InvalidInput(
                f"run_at must be an ISO-8601 timestamp with a zone, got {_show(run_at)}: {error}"
            ) from None
    after = _after(value)
    retry_on = _exit_codes(value, "retry_on")
    no_retry_on = _exit_codes(value, "no_retry_on")
    queue = check_queue_name(value["queue"], "queue") if "queue" in value else DEFAULT_QUEUE
    tags = _tags(value)
    unique_key = _key_text(value, "unique_key", UNIQUE_KEY_LIMIT)
    concurrency_key = _key_text(value, "concurrency_key", CONCURRENCY_KEY_LIMIT)
    concurrency_limit = _integer(value, "concurrency_limit", 1, CONCURRENCY_LIMIT_MAX)
    if concurrency_limit is not None and concurrency_key is None:
        raise InvalidInput("concurrency_limit is only allowed with concurrency_key")
    if concurrency_key is not None and concurrency_limit is None:
        concurrency_limit = 1
    env = _env(value)
    cwd = _cwd(value)
    stdin = _stdin(value)
    on_success, on_dead = (_hook(value, key, hooks) for key in HOOK_KEYS)
    return JobSpec(
        command=command,
        id=job_id,
        max_retries=max_retries,
        priority=0 if priority is None else priority,
        run_at_ms=run_at_ms,
        delay_ms=None if delay is None else int(delay * 1000),
        timeout=timeout,
        after=after,
        retry_on=retry_on,
        no_retry_on=no_retry_on,
        queue=queue,
        tags=tags,
        unique_key=unique_key,
        concurrency_key=concurrency_key,
        concurrency_limit=concurrency_limit,
        env=env,
        cwd=cwd,
        stdin=stdin,
        on_success=on_success,
        on_dead=on_dead,
    )


def check_template(value, what, hooks=True):
    """Check the job object of a hook or a schedule (`what` names it in messages): a job without id, run_at or
    delay, which queuectl sets each time it makes one. Returns (the JobSpec, the object as canonical JSON)."""
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON job object, got {_json_type(value)}")
    forbidden = [key for key in value if key in TEMPLATE_FORBIDDEN or (not hooks and key in HOOK_KEYS)]
    if forbidden:
        reason = "a hook has no hooks of its own" if forbidden[0] in HOOK_KEYS else "queuectl sets it each time"
        raise InvalidInput(f"{what}: {forbidden[0]} is not allowed here ({reason})")
    try:
        spec = check_job(value, hooks=hooks)
    except InvalidInput as error:
        raise InvalidInput(f"{what}: {error}") from None
    return spec, json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _hook(value, key, allowed):
    """The hook job under `key`, checked, as canonical JSON text; None when absent."""
    if key not in value:
        return None
    if not allowed:
        raise InvalidInput(f"{key} is not allowed here (a hook has no hooks of its own)")
    return check_template(value[key], key, hooks=False)[1]


def _env(value):
    """`env` as sorted (name, value) pairs: at most ENV_LIMIT names of [A-Za-z_][A-Za-z0-9_]*, string values."""
    if "env" not in value:
        return ()
    env = value["env"]
    if not isinstance(env, dict) or len(env) > ENV_LIMIT:
        raise InvalidInput(f"env must be an object of at most {ENV_LIMIT} variables, got {_show(env)}")
    for name, text in env.items():
        if not ENV_NAME.fullmatch(name):
            raise InvalidInput(f"env: a variable name must match [A-Za-z_][A-Za-z0-9_]*, got {_show(name)}")
        if not isinstance(text, str):
            raise InvalidInput(f"env: {name} must be a string, got {_show(text)}")
        if "\x00" in text or len(text) > ENV_VALUE_LIMIT or not _is_unicode_text(text):
            raise InvalidInput(f"env: {name} must be Unicode text of at most {ENV_VALUE_LIMIT} characters"
                               " without a NUL byte")
    return tuple(sorted(env.items()))


def _cwd(value):
    if "cwd" not in value:
        return None
    cwd = value["cwd"]
    if not (isinstance(cwd, str) and cwd.startswith("/") and len(cwd) <= PATH_LIMIT and "\x00" not in cwd
            and _is_unicode_text(cwd)):
        raise InvalidInput(f"cwd must be an absolute path (starting with /) of at most {PATH_LIMIT} characters,"
                           f" got {_show(cwd)}")
    return cwd


def _stdin(value):
    if "stdin" not in value:
        return None
    text = value["stdin"]
    if not isinstance(text, str):
        raise InvalidInput(f"stdin must be a string, got {_show(text)}")
    if "\x00" in text or not _is_unicode_text(text) or len(text.encode("utf-8")) > STDIN_LIMIT:
        raise InvalidInput(f"stdin must be Unicode text of at most {STDIN_LIMIT} bytes (1 MiB) without a NUL byte,"
                           f" got {len(text)} characters")
    return text


def _check_plain(value):
    """The JobSpec check_job returns for the usual job (a command, perhaps an id, max_retries and priority, all
    valid and of JSON's own types); None for anything else, which check_job then checks in full."""
    if type(value) is not dict or not _PLAIN_KEYS.issuperset(value):
        return None
    command = value.get("command")
    if not (type(command) is str and command.strip() and "\x00" not in command and len(command) <= COMMAND_LIMIT
            and (command.isascii() or _is_unicode_text(command))):
        return None
    job_id = value.get("id")
    if "id" in value and not (type(job_id) is str and ID_PATTERN.fullmatch(job_id)):
        return None
    max_retries = value.get("max_retries")
    if "max_retries" in value and not (type(max_retries) is int and 0 <= max_retries <= MAX_RETRIES_LIMIT):
        return None
    priority = value.get("priority", 0)
    if not (type(priority) is int and -PRIORITY_LIMIT <= priority <= PRIORITY_LIMIT):
        return None
    queue = value.get("queue", DEFAULT_QUEUE)
    if queue is not DEFAULT_QUEUE and not (type(queue) is str and QUEUE_PATTERN.fullmatch(queue)):
        return None
    # JobSpec(command=..., id=..., max_retries=..., priority=...) without the frozen dataclass's __init__, which
    # sets each of the ten fields through object.__setattr__: 0.9 us, as much as all the checks above.
    spec = object.__new__(JobSpec)
    spec.__dict__.update(_SPEC_DEFAULTS, command=command, id=job_id, max_retries=max_retries, priority=priority,
                         queue=queue)
    return spec


def check_queue_name(name, what="queue"):
    """`name` if it is a valid queue name (1-64 of A-Z a-z 0-9 . _ -); InvalidInput naming `what` otherwise."""
    if not (isinstance(name, str) and QUEUE_PATTERN.fullmatch(name)):
        raise InvalidInput(f"{what} must be 1-64 characters of A-Z a-z 0-9 . _ -, got {_show(name)}")
    return name


def check_tag(tag, what="tag"):
    """`tag` if it is a valid tag (the characters of a queue name); InvalidInput naming `what` otherwise."""
    if not (isinstance(tag, str) and QUEUE_PATTERN.fullmatch(tag)):
        raise InvalidInput(f"{what} must be 1-64 characters of A-Z a-z 0-9 . _ -, got {_show(tag)}")
    return tag


def _tags(value):
    """The job's tags as a tuple, each once, in their order."""
    if "tags" not in value:
        return ()
    tags = value["tags"]
    if not isinstance(tags, list) or len(tags) > TAGS_LIMIT:
        raise InvalidInput(f"tags must be a list of at most {TAGS_LIMIT} strings, got {_show(tags)}")
    for tag in tags:
        check_tag(tag, "tags")
    return tuple(dict.fromkeys(tags))


def _key_text(value, key, limit):
    """A key's string (1-`limit` characters of Unicode text, no NUL); None when absent."""
    if key not in value:
        return None
    text = value[key]
    if not (isinstance(text, str) and 1 <= len(text) <= limit and "\x00" not in text and _is_unicode_text(text)):
        raise InvalidInput(f"{key} must be a string of 1-{limit} characters (no NUL), got {_show(text)}")
    return text


def _after(value):
    """The ids of `after` (a list of job ids, each once); whether they exist (and are not the job itself)
    is the store's to say."""
    if "after" not in value:
        return ()
    ids = value["after"]
    if not isinstance(ids, list) or len(ids) > AFTER_LIMIT:
        raise InvalidInput(f"after must be a list of at most {AFTER_LIMIT} job ids, got {_show(ids)}")
    for item in ids:
        if not (isinstance(item, str) and ID_PATTERN.fullmatch(item)):
            raise InvalidInput(f"after must hold job ids (1-128 characters of A-Z a-z 0-9 . _ : -), got {_show(item)}")
    return tuple(dict.fromkeys(ids))  # a repeated id is one dependency


def _exit_codes(value, key):
    """A list of exit codes 1-255 and/or "timeout", as a sorted tuple; None when absent."""
    if key not in value:
        return None
    codes = value[key]
    if not isinstance(codes, list) or len(codes) > 256:
        raise InvalidInput(f"{key} must be a list of exit codes (1-255) or \"{TIMEOUT_CODE}\", got {_show(codes)}")
    for code in codes:
        is_code = isinstance(code, int) and not isinstance(code, bool) and 1 <= code <= 255
        if not (is_code or code == TIMEOUT_CODE):
            raise InvalidInput(f"{key} must hold exit codes from 1 to 255 or \"{TIMEOUT_CODE}\", got {_show(code)}")
    return tuple(sorted(set(codes), key=lambda code: (isinstance(code, str), code)))


def _integer(value, key, low, high):
    if key not in value:
        return None
    number = value[key]
    if isinstance(number, bool) or not isinstance(number, int) or not low <= number <= high:
        bounds = f">= {low}" if low == 0 else f"between {low} and {high}"
        if low == 0:
            bounds += f" and <= {high}"
        raise InvalidInput(f"{key} must be an integer {bounds}, got {_show(number)}")
    return number


def _seconds(value, key, allow_zero):
    if key not in value:
        return None
    number = value[key]
    valid = (
        not isinstance(number, bool)
        and isinstance(number, (int, float))
        and (number >= 0 if allow_zero else number > 0)
        and number <= SECONDS_LIMIT  # before isfinite, which cannot take an integer beyond a float's range
        and math.isfinite(number)
    )
    if not valid:
        relation = ">= 0" if allow_zero else "> 0"
        raise InvalidInput(
            f"{key} must be a number of seconds {relation} and <= {SECONDS_LIMIT}, got {_show(number)}"
        )
    return number


def _is_unicode_text(text):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _json_type(value):
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _show(value):
    """A short rendering of a bad value for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    try:
        text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    except (RecursionError, ValueError):  # nested too deep to render, or an integer of over 4300 digits
        return f"{_json_type(value)} too large to show"
    return text if len(text) <= 60 else text[:57] + "..."


def _short(error):
    text = str(error)
    return text if len(text) <= 120 else text[:117] + "..."


RATE_PATTERN = re.compile(r"([0-9]{1,9})/([0-9]{0,6})([smh])")
RATE_UNITS = {"s": 1, "m": 60, "h": 3600}
RATE_COUNT_MAX = 100_000


def parse_rate(text):
    """`N/PERIOD` (PERIOD: s, m or h, maybe with a count: 10/m, 100/30s) as (N, period seconds); InvalidInput
    otherwise."""
    found = RATE_PATTERN.fullmatch(text.strip()) if isinstance(text, str) else None
    count = int(found.group(1)) if found else 0
    period = int(found.group(2) or 1) * RATE_UNITS[found.group(3)] if found else 0
    if not (1 <= count <= RATE_COUNT_MAX and 1 <= period <= 24 * 3600):
        raise InvalidInput(f"rate must be N/PERIOD with N from 1 to {RATE_COUNT_MAX} and PERIOD s, m or h (e.g. 10/m,"
                           f" 100/30s; at most a day), or none; got {_show(text)}")
    return count, period


def check_queue_limit(limit):
    """A queue's limit: an integer >= 1, or None for no limit."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= CONCURRENCY_LIMIT_MAX:
        raise InvalidInput(f"limit must be an integer from 1 to {CONCURRENCY_LIMIT_MAX}, or none; got {_show(limit)}")
    return limit
