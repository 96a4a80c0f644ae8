"""What the store hands out: claims, heartbeats and job records shaped from rows (ISO times, JSON lists)."""

import json
import os
from dataclasses import dataclass

from ..timeutil import to_iso

_TIME_FIELDS = ("run_at", "created_at", "updated_at", "started_at", "finished_at", "heartbeat_at",
                "scheduled_for")


@dataclass(frozen=True)
class Claim:
    """A job a worker holds: what it needs to run it and to report back (fenced by `token`)."""

    seq: int
    attempt: int  # the run's number since the job was created
    token: str
    job: dict

    @property
    def id(self):
        return self.job["id"]


@dataclass(frozen=True)
class Heartbeat:
    """What a worker learns from its heartbeat."""

    stop_requested: bool
    lease_held: bool
    settings: dict
    cancel_requested: bool = False  # someone ran `queuectl cancel` on the job this worker runs
    rejoined: bool = False  # its registration had been forgotten (it looked dead): it was registered again
    lost: frozenset = frozenset()  # the seqs of its jobs whose lease it no longer holds
    cancelled: frozenset = frozenset()  # the seqs of its jobs someone asked to cancel
    leases_expired: bool = True  # some job's lease has expired (a lost worker's): reclaim_expired has work
    next_schedule_due: int = None  # when a schedule is next due (ms; None: no active schedule)


def new_job_id():
    """A random job id (64 bits, so collisions are negligible even at millions of jobs)."""
    return os.urandom(8).hex()  # what secrets.token_hex(8) does, without importing hmac/hashlib at start


def _new_job_ids(count):
    """`count` random job ids like new_job_id's, from one read of the OS's random source (bulk enqueue)."""
    digits = os.urandom(8 * count).hex()
    return iter([digits[start: start + 16] for start in range(0, 16 * count, 16)])


def _new_record(row):
    """The record of a job just stored from `row` (q.insert_job's parameters), equal to what reading it
    back gives; a RETURNING clause would cost ~20 us of the ~90 us of an enqueue."""
    return _to_record({
        "id": row["id"], "command": row["command"], "state": "pending", "attempts": 0,
        "max_retries": row["max_retries"], "priority": row["priority"], "run_at": row["run_at"],
        "timeout": None if row["timeout"] is None else float(row["timeout"]),  # the column is a float
        "created_at": row["now"], "updated_at": row["now"], "last_error": None, "exit_code": None,
        "worker_id": None, "depends_on": row["depends_on"], "retry_on": row["retry_on"],
        "no_retry_on": row["no_retry_on"], "queue": row["queue"], "tags": row["tags"], "unique_key": row["unique_key"],
        "concurrency_key": row["concurrency_key"], "concurrency_limit": row["concurrency_limit"], "env": row["env"],
        "cwd": row["cwd"], "stdin": row["stdin"], "on_success": row["on_success"], "on_dead": row["on_dead"],
        "schedule": row["schedule"], "scheduled_for": row["scheduled_for"], "parent_id": row["parent_id"],
    })


def _record(cursor, row):
    return _to_record(dict(zip([d[0] for d in cursor.description], row, strict=False)))


def _to_record(record):
    for field in _TIME_FIELDS:
        if field in record:
            record[field] = to_iso(record[field])
    if "depends_on" in record:  # a job record: its JSON lists as lists, depends_on named as the field 'after'
        after = record.pop("depends_on")
        for field in ("retry_on", "no_retry_on"):
            record[field] = None if record[field] is None else json.loads(record[field])
        record["after"] = json.loads(after) if after else []
        if "tags" in record:
            tags = record["tags"]
            record["tags"] = json.loads(tags) if tags else []
    if "env" in record:  # schedules and hooks: JSON objects
        record["env"] = json.loads(record["env"]) if record["env"] else {}
        for field in ("on_success", "on_dead"):
            if isinstance(record[field], str):
                record[field] = json.loads(record[field])
    return record

