"""Schedules and reruns under /api/v1: the routes of `queuectl schedule ...` and `queuectl rerun`.

They check their credentials as the api blueprint does (the same token, session and CSRF rules) and their input
with the shared package's checks, as the CLI does."""

from flask import Blueprint
from queuectl_core.errors import InvalidInput
from queuectl_core.schedules import check_schedule

from . import auth, params
from .audit import actor
from .storage import get_store

blueprint = Blueprint("schedules", __name__, url_prefix="/api/v1")
blueprint.before_request(auth.check_api_request)

SCHEDULE_KEYS = ("name", "cron", "every", "timezone", "overlap", "job")


@blueprint.get("/schedules")
def list_schedules():
    """Every schedule with its next and last run (as `queuectl schedule list --json`)."""
    params.query_args(())
    return {"schedules": get_store().list_schedules()}


@blueprint.post("/schedules")
def add_schedule():
    """Add a schedule: {"name", "cron" or "every", "timezone", "overlap", "job"} → 201 and its record; 400 for a bad
    expression, zone, interval or job; 409 when the name is taken."""
    params.query_args(())
    body = params.json_body()
    unknown = [key for key in body if key not in SCHEDULE_KEYS]
    if unknown:
        raise InvalidInput(f"unknown key '{params.clip(unknown[0])}' (allowed: {', '.join(SCHEDULE_KEYS)})")
    for key in ("cron", "timezone", "overlap"):
        if key in body and not isinstance(body[key], str):
            raise InvalidInput(f"{key} must be a string")
    spec = check_schedule(body.get("name"), cron=body.get("cron"), every=body.get("every"),
                          timezone=body.get("timezone"), overlap=body.get("overlap"), job=body.get("job"))
    return get_store().add_schedule(spec, actor=actor()), 201


@blueprint.get("/schedules/<name>")
def show_schedule(name):
    """One schedule's record; 404."""
    params.query_args(())
    return get_store().get_schedule(name)


@blueprint.delete("/schedules/<name>")
def remove_schedule(name):
    """Delete a schedule (the jobs it made stay); 404."""
    params.query_args(())
    get_store().remove_schedule(name, actor=actor())
    return {"name": name, "removed": True}


@blueprint.post("/schedules/<name>/pause")
def pause_schedule(name):
    """Stop firing the schedule: its record."""
    params.query_args(())
    return get_store().pause_schedule(name, actor=actor())


@blueprint.post("/schedules/<name>/resume")
def resume_schedule(name):
    """Fire the schedule again from its next slot: its record."""
    params.query_args(())
    return get_store().resume_schedule(name, actor=actor())


@blueprint.post("/schedules/<name>/run")
def run_schedule(name):
    """Enqueue one job of the schedule now: 201 and the job's record."""
    params.query_args(())
    return get_store().run_schedule(name, actor=actor()), 201


@blueprint.post("/jobs/<job_id>/rerun")
def rerun_job(job_id):
    """A new job with the spec of job `job_id` (any state): 201 and the new record; 404."""
    params.query_args(())
    return get_store().rerun(job_id, actor=actor()), 201
