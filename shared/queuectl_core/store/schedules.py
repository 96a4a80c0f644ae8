"""Schedules in the database, fired by whichever live worker looks first (mixed into Store).

Firing takes the due schedules under the write transaction (SQLite: BEGIN IMMEDIATE's lock; PostgreSQL: FOR UPDATE
SKIP LOCKED on their rows), inserts one job per slot and moves each schedule's next_run_at past the slots, all in
one transaction: a second worker either waits and then finds nothing due, or skips the rows being fired. The
unique index on jobs (schedule, scheduled_for) backs this up: a slot's second job could never be inserted.
"""

import json
from dataclasses import dataclass, replace

from ..errors import DuplicateSchedule, InvalidInput, ScheduleNotFound
from ..schedules import ScheduleSpec, due_slots, every_text, next_slot
from ..timeutil import now_ms, to_iso
from ..validation import check_job


@dataclass(frozen=True)
class Firing:
    """What fire_due_schedules did: the ids of the jobs it enqueued, and when a schedule is next due (ms, or None
    when no schedule is active)."""

    job_ids: list
    next_due: int | None


class SchedulesMixin:
    """add, list, pause, resume, remove and run schedules; fire the due ones."""

    def add_schedule(self, spec, now=None, actor=None):
        """Store a checked ScheduleSpec; its first slot is the first after now. DuplicateSchedule if the name is
        taken. Returns its record."""
        now = now_ms() if now is None else now
        with self._transaction() as connection:
            if connection.execute(self.q.get_schedule, {"name": spec.name}).fetchone() is not None:
                raise DuplicateSchedule(spec.name)
            try:
                connection.execute(self.q.insert_schedule, {
                    "name": spec.name, "cron": spec.cron, "every_ms": spec.every_ms, "timezone": spec.timezone,
                    "overlap": spec.overlap, "job": spec.job, "next_run_at": next_slot(spec, now), "now": now,
                })
            except self._integrity_error:  # added by another process since the check above
                raise DuplicateSchedule(spec.name) from None
            self._wake(connection)  # idle workers learn the new next due time
            self._audit(connection, actor, "schedule-add", spec.name, {
                "cron": spec.cron, "every_ms": spec.every_ms, "timezone": spec.timezone, "overlap": spec.overlap}, now)
        return self.get_schedule(spec.name)

    def list_schedules(self):
        """Every schedule's record, by name."""
        cursor = self._read(self.q.list_schedules)
        return [_schedule_record(_raw(cursor, row)) for row in cursor.fetchall()]

    def get_schedule(self, name):
        """One schedule's record; ScheduleNotFound otherwise."""
        cursor = self._read(self.q.get_schedule, {"name": name})
        row = cursor.fetchone()
        if row is None:
            raise ScheduleNotFound(name)
        return _schedule_record(_raw(cursor, row))

    def remove_schedule(self, name, now=None, actor=None):
        """Delete a schedule (the jobs it made stay); ScheduleNotFound for an unknown name."""
        now = now_ms() if now is None else now
        with self._transaction() as connection:
            if connection.execute(self.q.delete_schedule, {"name": name}).rowcount == 0:
                raise ScheduleNotFound(name)
            self._audit(connection, actor, "schedule-rm", name, {}, now)

    def pause_schedule(self, name, now=None, actor=None):
        """Stop firing a schedule (its slots while paused are not caught up later). Returns its record."""
        now = now_ms() if now is None else now
        with self._transaction() as connection:
            if connection.execute(self.q.pause_schedule, {"name": name, "now": now}).rowcount == 0:
                raise ScheduleNotFound(name)
            self._audit(connection, actor, "schedule-pause", name, {}, now)
        return self.get_schedule(name)

    def resume_schedule(self, name, now=None, actor=None):
        """Fire a paused schedule again, from its first slot after now. Returns its record."""
        now = now_ms() if now is None else now
        with self._transaction() as connection:
            cursor = connection.execute(self.q.get_schedule, {"name": name})
            row = cursor.fetchone()
            if row is None:
                raise ScheduleNotFound(name)
            record = _raw(cursor, row)
            if record["paused"]:
                connection.execute(self.q.resume_schedule, {
                    "name": name, "now": now, "next_run_at": next_slot(_spec_of(record), now)})
                self._wake(connection)
            self._audit(connection, actor, "schedule-resume", name, {"changed": bool(record["paused"])}, now)
        return self.get_schedule(name)

    def run_schedule(self, name, now=None, actor=None):
        """Enqueue one job of a schedule now, outside its slots (its `scheduled_for` is null); return its record."""
        now = now_ms() if now is None else now
        with self._transaction() as connection:
            cursor = connection.execute(self.q.get_schedule, {"name": name})
            row = cursor.fetchone()
            if row is None:
                raise ScheduleNotFound(name)
            record = _raw(cursor, row)
            job = self._insert_derived(connection, replace(_job_spec(record), schedule=name), now)
            connection.execute(self.q.schedule_ran, {"name": name, "last_run_at": now, "last_job_id": job["id"],
                                                     "now": now})
            self._audit(connection, actor, "schedule-run", name, {"job": job["id"]}, now)
        return job

    def fire_due_schedules(self, now=None, settings=None):
        """Enqueue the jobs of every due slot of every active schedule, once however many workers call this at the
        same time (see the module's docstring); a worker calls it with each heartbeat. Returns a Firing."""
        now = now_ms() if now is None else now
        next_due = self._read(self.q.next_schedule_due).fetchone()[0]
        if next_due is None or next_due > now:
            return Firing([], next_due)  # the common case: one indexed read, no write transaction
        window_ms = int((settings or self._decision_settings())["lease_timeout"] * 1000)
        fired = []
        with self._transaction() as connection:
            cursor = connection.execute(self.q.due_schedules, {"now": now})
            for row in cursor.fetchall():
                fired.extend(self._fire(connection, _raw(cursor, row), now, window_ms))
            next_due = connection.execute(self.q.next_schedule_due, {}).fetchone()[0]
        return Firing(fired, next_due)

    def _fire(self, connection, record, now, window_ms):
        """Fire one due schedule (its record as read under the transaction): a job per due slot, except those
        skipped because an earlier job of the schedule is unfinished (overlap skip); then move it on."""
        schedule = _spec_of(record)
        slots, following = due_slots(schedule, record["next_run_at"], now, window_ms)
        fired = []
        try:
            job_spec = _job_spec(record)
        except InvalidInput:  # checked when added; a job this version cannot read is skipped, not retried forever
            slots = []
        last_run_at = last_job_id = None
        for slot in slots:
            if schedule.overlap == "skip" and connection.execute(
                    self.q.schedule_busy, {"name": schedule.name}).fetchone() is not None:
                continue
            job = self._insert_derived(connection, replace(job_spec, schedule=schedule.name, scheduled_for_ms=slot),
                                       now)
            last_run_at, last_job_id = slot, job["id"]
            fired.append(last_job_id)
        connection.execute(self.q.advance_schedule, {"name": schedule.name, "next_run_at": following, "now": now,
                                                     "last_run_at": last_run_at, "last_job_id": last_job_id})
        return fired


def _raw(cursor, row):
    """A schedule's row as a dict of its columns, times in milliseconds."""
    return dict(zip([d[0] for d in cursor.description], row, strict=True))


def _spec_of(record):
    """The ScheduleSpec of a schedule's row."""
    return ScheduleSpec(record["name"], record["cron"], record["every_ms"], record["timezone"], record["overlap"],
                        record["job"])


def _job_spec(record):
    return check_job(json.loads(record["job"]))


def _schedule_record(record):
    """A schedule as `schedule list --json` prints it."""
    every_ms = record["every_ms"]
    return {
        "name": record["name"], "cron": record["cron"], "every": every_text(every_ms) if every_ms else None,
        "timezone": record["timezone"], "overlap": record["overlap"], "paused": bool(record["paused"]),
        "next_run_at": to_iso(record["next_run_at"]), "last_run_at": to_iso(record["last_run_at"]),
        "last_job_id": record["last_job_id"], "job": json.loads(record["job"]),
        "created_at": to_iso(record["created_at"]), "updated_at": to_iso(record["updated_at"]),
    }
