"""The operator's routes under /api/v1: cancel, logs, wait, pause/resume, purge and DLQ purge.

They check their credentials as the api blueprint does (the same token, session and CSRF rules) and their input
with the shared package's checks, as the CLI does."""

from flask import Blueprint
from queuectl_core.durations import parse_duration
from queuectl_core.errors import InvalidInput
from queuectl_core.lifecycle import FINISHED_STATES
from queuectl_core.waiting import wait_for_jobs

from . import auth, params
from .audit import actor
from .storage import get_store

blueprint = Blueprint("control", __name__, url_prefix="/api/v1")
blueprint.before_request(auth.check_api_request)

MAX_WAIT_SECONDS = 20  # below gunicorn's 30 s worker timeout; a waiting request holds one server worker


@blueprint.post("/jobs/<job_id>/cancel")
def cancel_job(job_id):
    """Cancel a job: 200 and the cancelled record for a pending or failed one; 202 and the (still
    processing) record when its worker has to stop it; 409 when it has ended."""
    params.query_args(())
    record, at_once = get_store().cancel(job_id, actor=actor())
    return record, 200 if at_once else 202


@blueprint.get("/jobs/<job_id>/logs")
def job_logs(job_id):
    """The output tail of the job's latest run (or run `attempt`), and whether that run is still going."""
    args = params.query_args(("attempt",))
    attempt = params.integer_arg(args, "attempt", None, 1, 10**9)
    run = get_store().run_output(job_id, attempt)
    return {"id": job_id, **run, "running": run["attempt"] is not None and run["finished_at"] is None}


@blueprint.get("/jobs/<job_id>/wait")
def wait_job(job_id):
    """Wait up to `timeout` seconds (0-20, default 10) for the job to end (completed, dead or cancelled):
    {"done": bool, "job": record}."""
    args = params.query_args(("timeout",))
    timeout = params.integer_arg(args, "timeout", 10, 0, MAX_WAIT_SECONDS)
    store = get_store()
    state = wait_for_jobs(store, [job_id], timeout)[job_id]
    return {"done": state in FINISHED_STATES, "job": store.get_job(job_id)}


@blueprint.get("/pause")
def pause_state():
    """Whether the queue is paused and since when (what `queuectl status` prints, for `queuectl --api`)."""
    params.query_args(())
    since = get_store().paused_since()
    return {"paused": since is not None, "paused_since": since}


@blueprint.post("/pause")
def pause():
    """Stop every worker from claiming jobs (running jobs finish), as `queuectl pause` does."""
    params.query_args(())
    store = get_store()
    store.pause(actor=actor())
    return {"paused": True, "paused_since": store.paused_since()}


@blueprint.post("/resume")
def resume():
    """Let workers claim again, as `queuectl resume` does."""
    params.query_args(())
    get_store().resume(actor=actor())
    return {"paused": False, "paused_since": None}


@blueprint.post("/purge")
def purge():
    """Delete finished jobs with their history: {"states": [...], "older_than": "7d", "dry_run": false}."""
    params.query_args(())
    body = params.json_body()
    return _purge(body, body.get("states"), required=("states",))


@blueprint.post("/dlq/purge")
def purge_dead():
    """Delete the dead jobs with their history; an optional body {"older_than": "7d", "dry_run": true}."""
    params.query_args(())
    body = params.json_body() if params.has_body() else {}
    return _purge(body, ["dead"], required=())


def _purge(body, states, required):
    allowed = (*required, "older_than", "dry_run")
    unknown = [key for key in body if key not in allowed]
    if unknown:
        raise InvalidInput(f"unknown key '{params.clip(unknown[0])}' (allowed: {', '.join(allowed)})")
    if "states" in required:
        if "states" not in body:
            raise InvalidInput("states is required: a list of finished states (completed, dead, cancelled)")
        if not (isinstance(states, list) and states and all(isinstance(state, str) for state in states)):
            raise InvalidInput("states must be a non-empty list of completed, dead or cancelled")
        wrong = [state for state in states if state not in FINISHED_STATES]
        if wrong:
            raise InvalidInput(f"only finished jobs can be purged: states must be among"
                               f" {', '.join(FINISHED_STATES)}, got {params.clip(wrong[0])!r}")
    seconds = parse_duration(body.get("older_than", 0), "older_than")
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise InvalidInput("dry_run must be true or false")
    store = get_store()
    if dry_run:
        count = store.count_finished(states, seconds)
    elif "states" in required:
        count = store.purge(states, seconds, actor=actor())
    else:  # POST /dlq/purge: recorded in the audit log as the dead letter queue's purge
        count = store.purge_dead(seconds, actor=actor())
    return {"count": count, "dry_run": dry_run}
