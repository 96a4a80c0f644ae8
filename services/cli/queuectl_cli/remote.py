"""`queuectl --api URL`: the store's methods that the commands call, over the HTTP API.

`ctx.store` is a RemoteStore when an API is configured, so the commands run unchanged: the same records, the same
output and the same exit codes, since every failure is raised as the store's own error class would be (the client's
exceptions are queuectl_core's errors too: InvalidJob an InvalidInput, exit 2; the others QueueErrors, exit 1).
The HTTP itself (timeouts, retries of GETs only, one-line messages) is the Python client's: queuectl.http.
"""

import dataclasses
import json
import re
from contextlib import contextmanager

from queuectl.errors import Error, InvalidJob
from queuectl.http import Connection, path
from queuectl_core.batch import MAX_BATCH
from queuectl_core.errors import DuplicateSchedule, JobNotFound, ScheduleNotFound
from queuectl_core.store.enqueue import BulkResult
from queuectl_core.timeutil import to_iso
from queuectl_core.validation import ID_PATTERN

PAGE = 1000  # the API's largest page of jobs, runs and audit entries
_INDEX = re.compile(r"^job ([0-9]+): ")
_AT_INDEX = re.compile(r"at index ([0-9]+)|repeats job ([0-9]+)")


def job_object(spec):
    """The JSON job object of a checked JobSpec: what the API checks again into the same spec (times in ms become
    `run_at` and `delay`, tuples lists, defaults left out)."""
    job = {}
    for field in dataclasses.fields(spec):
        value = getattr(spec, field.name)
        if value is None or value == field.default:
            continue
        if field.name == "run_at_ms":
            job["run_at"] = to_iso(value)
        elif field.name == "delay_ms":
            job["delay"] = value / 1000
        elif dataclasses.is_dataclass(value):
            job[field.name] = job_object(value)
        else:
            job[field.name] = list(value) if isinstance(value, tuple) else value
    return job


class RemoteStore:
    """The store's interface, as far as the CLI's commands use it, through the API at `url` with `token`."""

    def __init__(self, url, token):
        self.http = Connection(url, token)
        self.location = url

    def close(self):
        self.http.close()

    def _post(self, route, body=None):
        return self.http.call("POST", route, body=body)

    # ---- jobs ----

    def enqueue(self, spec, actor=None):
        return self.enqueue_or_find(spec)[0]

    def enqueue_or_find(self, spec, actor=None):
        status, record = self._post("/jobs", job_object(spec))
        return record, status == 201  # 200: an unfinished job holds its unique_key

    def enqueue_many(self, numbered_specs, progress=None):
        if len(numbered_specs) > MAX_BATCH:
            raise InvalidJob(f"through the API one enqueue adds at most {MAX_BATCH} jobs (all or nothing), got"
                             f" {len(numbered_specs)}: split the file")
        lines = [line for line, _ in numbered_specs]
        try:
            answer = self._post("/jobs/batch", [job_object(spec) for _, spec in numbered_specs])[1]
        except Error as error:
            if error.body.get("index") is None:
                raise
            raise type(error)(_in_lines(str(error), lines), error.status, error.body) from None
        if progress is not None:
            progress(len(answer["ids"]))
        duplicates = [(lines[skip["index"]], skip["unique_key"], skip["id"]) for skip in answer.get("duplicates", ())]
        return BulkResult(answer["ids"], duplicates)

    def get_job(self, job_id, history=False, history_limit=None, history_offset=0):
        if not history:
            record = self.http.get(_job(job_id), {"history_limit": 1})
            del record["history"], record["history_total"]
            return record
        record = self._history_page(job_id, history_limit, history_offset)
        runs, total = record["history"], record["history_total"]
        while (history_limit is None or len(runs) < history_limit) and history_offset + len(runs) < total:
            size = PAGE if history_limit is None else min(PAGE, history_limit - len(runs))
            older = self._history_page(job_id, size, history_offset + len(runs))["history"]
            if not older:
                break
            runs = older + runs  # pages go back in time; history is oldest first
        record["history"] = runs
        return record

    def _history_page(self, job_id, limit, offset):
        size = PAGE if limit is None else min(PAGE, limit)
        return self.http.get(_job(job_id), {"history_limit": size, "history_offset": offset or None})

    def list_jobs(self, state=None, limit=50, offset=0, queue=None, tag=None):
        jobs = []
        while len(jobs) < limit:
            size = min(PAGE, limit - len(jobs))
            page = self.http.get("/jobs", {"state": state, "limit": size, "offset": offset + len(jobs),
                                           "queue": queue, "tag": tag})["jobs"]
            jobs += page
            if len(page) < size:
                break
        return jobs

    def states_of(self, job_ids):
        return {job_id: self.get_job(job_id)["state"] for job_id in job_ids}

    def run_output(self, job_id, attempt=None):
        run = self.http.get(_job(job_id, "logs"), {"attempt": attempt})
        del run["id"], run["running"]
        return run

    def cancel(self, job_id, actor=None):
        status, record = self._post(_job(job_id, "cancel"))
        return record, status == 200

    def retry_dead(self, job_id, actor=None):
        return self._post(_job(job_id, "retry"))[1]

    def retry_all_dead(self, actor=None):
        return self._post("/dlq/retry-all")[1]["retried"]

    def count_finished(self, states, seconds):
        return self._post("/purge", {"states": list(states), "older_than": seconds, "dry_run": True})[1]["count"]

    def purge(self, states, seconds, actor=None):
        return self._post("/purge", {"states": list(states), "older_than": seconds})[1]["count"]

    def purge_dead(self, seconds, actor=None):
        return self._post("/dlq/purge", {"older_than": seconds})[1]["count"]

    # ---- the queue ----

    def status(self):
        return self.http.get("/stats")

    def counts(self):
        return self.status()["jobs"]

    def paused_since(self, queue=None):
        if queue is not None:
            return self.queue_info(queue)["paused_since"]
        return self.http.get("/pause")["paused_since"]

    def pause(self, queue=None, actor=None):
        if queue is not None:
            return self._post(_queue_path(queue, "pause"))[1]["changed"]
        was_paused = self.http.get("/pause")["paused"]
        self._post("/pause")
        return not was_paused

    def resume(self, queue=None, actor=None):
        if queue is not None:
            return self._post(_queue_path(queue, "resume"))[1]["changed"]
        was_paused = self.http.get("/pause")["paused"]
        self._post("/resume")
        return was_paused

    # ---- named queues ----

    def queue_list(self):
        return self.http.get("/queues")["queues"]

    def queue_info(self, name):
        return self.http.get(_queue_path(name))

    def set_queue_limit(self, name, limit, actor=None):
        return self.http.call("PUT", _queue_path(name, "limit"), body={"limit": limit})[1]

    def set_queue_rate(self, name, count, period_seconds, actor=None):
        rate = None if count is None else f"{count}/{rate_period(period_seconds)}"
        return self.http.call("PUT", _queue_path(name, "rate"), body={"rate": rate})[1]

    def get_settings(self):
        return self.http.get("/settings")

    def set_setting(self, name, value, actor=None):
        # Checked here as the store checks it (the CLI gives text; the API takes the JSON value it stands for).
        from queuectl_core.settings import check

        return self.http.call("PUT", "/settings", body={name: check(name, value)})[1][name]

    def live_workers(self):
        return self.http.get("/workers")["workers"]

    def request_stop(self, actor=None):
        return self._post("/workers/stop")[1]["stop_requested"]

    def audit_log(self, limit=50, offset=0):
        entries = []
        while len(entries) < limit:
            size = min(PAGE, limit - len(entries))
            page = self.http.get("/audit", {"limit": size, "offset": offset + len(entries)})["entries"]
            entries += page
            if len(page) < size:
                break
        return entries


    # ---- schedules and reruns ----

    def add_schedule(self, spec, now=None, actor=None):
        body = {"name": spec.name, "timezone": spec.timezone, "overlap": spec.overlap, "job": json.loads(spec.job)}
        if spec.cron is not None:
            body["cron"] = spec.cron
        else:  # in seconds: the API checks it again into the same milliseconds (a text such as 1.5s could round)
            body["every"] = spec.every_ms // 1000 if spec.every_ms % 1000 == 0 else spec.every_ms / 1000
        with _schedule_errors(spec.name):
            return self._post("/schedules", body)[1]

    def list_schedules(self):
        return self.http.get("/schedules")["schedules"]

    def get_schedule(self, name):
        with _schedule_errors(name):
            return self.http.get(path("schedules", name))

    def remove_schedule(self, name, now=None, actor=None):
        with _schedule_errors(name):
            self.http.call("DELETE", path("schedules", name))

    def pause_schedule(self, name, now=None, actor=None):
        with _schedule_errors(name):
            return self._post(path("schedules", name, "pause"))[1]

    def resume_schedule(self, name, now=None, actor=None):
        with _schedule_errors(name):
            return self._post(path("schedules", name, "resume"))[1]

    def run_schedule(self, name, now=None, actor=None):
        with _schedule_errors(name):
            return self._post(path("schedules", name, "run"))[1]

    def rerun(self, job_id, now=None, actor=None):
        return self._post(_job(job_id, "rerun"))[1]


def _queue_path(name, *rest):
    """The route of queue `name`, checked here as the store checks it: a name such as 'a/b' would otherwise name
    another route (404) instead of being refused as a bad queue name (exit 2)."""
    from queuectl_core.validation import check_queue_name

    return path("queues", check_queue_name(name), *rest)


def rate_period(seconds):
    """A period of `seconds` as the API spells it (no leading zeros): 60 -> m, 90 -> 90s, 7200 -> 2h."""
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        if seconds % size == 0:
            count = seconds // size
            return unit if count == 1 else f"{count}{unit}"
    return f"{seconds}s"


def _job(job_id, *rest):
    """The path of job `job_id` (then `rest`). JobNotFound, with no request, for an id no job can have: the store
    finds no such job, while in a URL it could name another route ('', 'a/b') and answer something else."""
    if not (isinstance(job_id, str) and ID_PATTERN.fullmatch(job_id)):
        raise JobNotFound(job_id)
    return path("jobs", job_id, *rest)


@contextmanager
def _schedule_errors(name):
    """The store's errors about the schedule `name` for the API's answers: 404 ScheduleNotFound, 409
    DuplicateSchedule. A name no schedule can have is not sent: the store finds no such schedule, and in a URL it
    could name another route ('..', '')."""
    if not (isinstance(name, str) and ID_PATTERN.fullmatch(name)):
        raise ScheduleNotFound(name)
    try:
        yield
    except Error as error:
        if error.status == 404:
            raise ScheduleNotFound(name) from None
        if error.status == 409:
            raise DuplicateSchedule(name) from None
        raise


def _in_lines(message, lines):
    """A batch's error message ("job 3: ...", indexes from 0) in the words of the local bulk enqueue ("line 4:
    ...", the input's line numbers), so that `enqueue --file` says the same on the database and through the API."""
    message = _INDEX.sub(lambda found: f"line {lines[int(found[1])]}: ", message)
    return _AT_INDEX.sub(lambda found: f"on line {lines[int(found[1])]}" if found[1] is not None
                         else f"repeats line {lines[int(found[2])]}", message)
