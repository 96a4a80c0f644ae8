"""Schedules: checking one, and the times of its slots. Pure: no I/O, time is a parameter (milliseconds since the
epoch), so daylight-saving days are tested without a clock.

A cron schedule's slots are the times its five-field expression matches in its time zone, as Debian's cron runs
them (through cronsim): a time that a spring-forward day skips runs at the first minute after the gap, a time that a
fall-back day repeats runs once, at its first occurrence. An `every` schedule's slots are the multiples of its
interval since 1970-01-01 00:00 UTC (every 5m: :00, :05, :10, ...), the same for every worker that computes them.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from .durations import parse_duration
from .errors import InvalidInput
from .validation import ID_PATTERN, check_template

OVERLAPS = ("skip", "allow")
MINIMUM_EVERY_MS = 1000
MAXIMUM_CATCH_UP_SLOTS = 100  # more due slots than this at once is downtime: caught up with one job
_CRON_CHARACTERS = re.compile(r"[0-9A-Za-z*/,\-? LW#]+")


@dataclass(frozen=True)
class ScheduleSpec:
    """A checked schedule: either `cron` (an expression) or `every_ms`; `job` the checked job object as JSON."""

    name: str
    cron: str | None
    every_ms: int | None
    timezone: str
    overlap: str
    job: str


def check_schedule(name, cron=None, every=None, timezone=None, overlap=None, job=None):
    """A ScheduleSpec from what a user gave (`job` the decoded JSON object); InvalidInput says what is wrong."""
    if not (isinstance(name, str) and ID_PATTERN.fullmatch(name)):
        raise InvalidInput(f"a schedule's name must be 1-128 characters of A-Z a-z 0-9 . _ : -, got {name!r}")
    if (cron is None) == (every is None):
        raise InvalidInput("give a schedule either a cron expression (--cron) or an interval (--every)")
    timezone = "UTC" if timezone is None else timezone
    zone(timezone)  # checks it
    overlap = "skip" if overlap is None else overlap
    if overlap not in OVERLAPS:
        raise InvalidInput(f"overlap must be one of {', '.join(OVERLAPS)}, got {overlap!r}")
    every_ms = None
    if every is not None:
        seconds = parse_duration(every, "every")
        every_ms = int(round(seconds * 1000))
        if every_ms < MINIMUM_EVERY_MS:
            raise InvalidInput(f"every must be at least 1s, got {every!r}")
    else:
        cron = check_cron(cron, timezone)
    if job is None:
        raise InvalidInput("a schedule needs its job: a JSON object such as {\"command\": \"backup.sh\"}")
    _, job_json = check_template(job, "the schedule's job")
    return ScheduleSpec(name, cron, every_ms, timezone, overlap, job_json)


def check_cron(expression, timezone="UTC"):
    """A five-field cron expression, normalized (single spaces); InvalidInput when it is malformed or never fires."""
    from cronsim import CronSim, CronSimError  # imported here: only schedule commands and firing need it

    if not isinstance(expression, str):
        raise InvalidInput(f"cron must be a five-field expression such as '0 2 * * *', got {expression!r}")
    fields = expression.split()
    if len(fields) != 5 or not _CRON_CHARACTERS.fullmatch(" ".join(fields)):
        raise InvalidInput(f"cron must have five fields (minute hour day-of-month month day-of-week),"
                           f" such as '0 2 * * *', got {expression!r}")
    normalized = " ".join(fields)
    try:
        next(CronSim(normalized, datetime.now(zone(timezone))))
    except StopIteration:
        raise InvalidInput(f"cron expression {expression!r} never fires") from None
    except (CronSimError, ValueError, KeyError, IndexError) as error:
        raise InvalidInput(f"cron expression {expression!r} is not valid: {error}") from None
    return normalized


def zone(name):
    """The ZoneInfo of an IANA time zone name; InvalidInput for an unknown or malformed one."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not isinstance(name, str) or not name or len(name) > 64:
        raise InvalidInput(f"timezone must be an IANA time zone name such as Europe/Berlin, got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput(f"unknown time zone {name!r}: give an IANA name such as UTC or Europe/Berlin") from None


def next_slot(schedule, after_ms):
    """The schedule's first slot strictly after `after_ms`."""
    if schedule.every_ms:
        return (after_ms // schedule.every_ms + 1) * schedule.every_ms
    from cronsim import CronSim

    start = datetime.fromtimestamp(after_ms // 1000, zone(schedule.timezone))
    for moment in CronSim(schedule.cron, start):
        slot = _ms(moment)
        # cronsim walks wall-clock time: on a fall-back day it may name a time already passed (the repeated hour).
        if slot > after_ms:
            return slot
    raise InvalidInput(f"schedule {schedule.name!r} never fires again")


def latest_slot(schedule, at_ms):
    """The schedule's latest slot at or before `at_ms`."""
    if schedule.every_ms:
        return at_ms // schedule.every_ms * schedule.every_ms
    from cronsim import CronSim

    start = datetime.fromtimestamp(at_ms // 1000 + 1, zone(schedule.timezone))
    for moment in CronSim(schedule.cron, start, reverse=True):
        slot = _ms(moment)
        if slot <= at_ms:
            return slot
    return None


def due_slots(schedule, next_run_at, now_ms, window_ms):
    """(the slots to fire now, the next slot after them) for a schedule whose next slot is `next_run_at`.

    Every due slot fires while workers look in time (within `window_ms`, the lease timeout: a live worker looks at
    least every third of it). A slot overdue by more was missed while no worker ran: the missed slots are caught up
    with one job, for the latest of them."""
    if next_run_at > now_ms:
        return [], next_run_at
    if now_ms - next_run_at > window_ms:
        latest = latest_slot(schedule, now_ms)
        return [latest if latest is not None else next_run_at], next_slot(schedule, now_ms)
    slots = []
    slot = next_run_at
    while slot <= now_ms:
        slots.append(slot)
        if len(slots) > MAXIMUM_CATCH_UP_SLOTS:
            return [latest_slot(schedule, now_ms)], next_slot(schedule, now_ms)
        slot = next_slot(schedule, slot)
    return slots, slot


def every_text(every_ms):
    """An interval as the shortest duration text that parses back to it: 30s, 5m, 1h, 2d, 1500ms as 1.5s."""
    for unit, size in (("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000)):
        if every_ms % size == 0:
            return f"{every_ms // size}{unit}"
    return f"{every_ms // 1000}s" if every_ms % 1000 == 0 else f"{every_ms / 1000:g}s"


def _ms(moment):
    return int(moment.astimezone(UTC).timestamp()) * 1000
