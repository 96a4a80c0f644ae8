"""The OpenAPI parts of schedules, hooks, a job's own context and reruns (merged into openapi.document())."""

from queuectl_core.durations import MAXIMUM_SECONDS
from queuectl_core.durations import PATTERN as DURATION_PATTERN
from queuectl_core.validation import ENV_LIMIT, ENV_VALUE_LIMIT, PATH_LIMIT, STDIN_LIMIT

from .openapi import JOB_ID_PARAMETER, JOB_ID_PATTERN, NULLABLE_TIME, _errors, _json, _ref

NO_NUL = "^[^\\u0000]*$"
CONTEXT_INPUT = {
    "env": {"type": "object", "maxProperties": ENV_LIMIT,
            "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
            "additionalProperties": {"type": "string", "maxLength": ENV_VALUE_LIMIT, "pattern": NO_NUL},
            "description": "added to the job's environment (not the worker's); visible to anyone with a token:"
                           " no secrets here"},
    "cwd": {"type": "string", "maxLength": PATH_LIMIT, "pattern": "^/[^\\u0000]*$",
            "description": "absolute directory the job starts in (default: the worker's job directory); a missing"
                           " one fails that run"},
    "stdin": {"type": "string", "maxLength": STDIN_LIMIT, "pattern": NO_NUL,
              "description": "fed to the job's standard input (at most 1 MiB of UTF-8)"},
}
CONTEXT_RECORD = {
    "env": {"type": "object", "additionalProperties": {"type": "string"}},
    "cwd": {"type": ["string", "null"]},
    "stdin": {"type": ["string", "null"]},
    "on_success": {"type": ["object", "null"], "description": "the hook job enqueued when this one completes"},
    "on_dead": {"type": ["object", "null"], "description": "the hook job enqueued when this one ends dead"},
    "schedule": {"type": ["string", "null"], "description": "the schedule that made this job"},
    "scheduled_for": {**NULLABLE_TIME, "description": "the slot it was made for (null: not a slot's)"},
    "parent_id": {"type": ["string", "null"], "description": "the job whose hook this job is"},
}
HOOK = {"description": "a job object without id, run_at, delay or hooks, enqueued as a new job; it gets"
                       " QUEUECTL_PARENT_ID, QUEUECTL_PARENT_STATE and QUEUECTL_PARENT_EXIT_CODE in its environment"}
CRON_PATTERN = "^\\s*[0-9A-Za-z*/,?#-]+(\\s+[0-9A-Za-z*/,?#-]+){4}\\s*$"
NAME_PARAMETER = {"name": "name", "in": "path", "required": True,
                  "schema": {"type": "string", "pattern": JOB_ID_PATTERN}}


def template(job_input, hooks):
    """The schema of a hook's or a schedule's job: JobInput without the keys queuectl sets."""
    left_out = {"id", "run_at", "delay"} | (set() if hooks else {"on_success", "on_dead"})
    return {"type": "object", "required": ["command"], "additionalProperties": False,
            "properties": {key: value for key, value in job_input["properties"].items() if key not in left_out}}


def add_to_schemas(schemas):
    """Add the new keys to Job and JobInput, and the schedules' schemas."""
    schemas["Job"]["properties"].update(CONTEXT_RECORD)
    schemas["Job"]["required"] = list(schemas["Job"]["properties"])
    job_input = schemas["JobInput"]
    job_input["properties"].update(CONTEXT_INPUT)
    hook = {**template(job_input, hooks=False), **HOOK}
    job_input["properties"].update(on_success=hook, on_dead=hook)
    schedule_job = {**template(job_input, hooks=True), "description": "the job each slot enqueues"}
    every = {"oneOf": [{"type": "number", "minimum": 1, "maximum": MAXIMUM_SECONDS},
                       {"type": "string", "pattern": DURATION_PATTERN}],
             "description": "an interval of at least 1 s: seconds, or a text such as 30s, 5m, 1h; slots at its"
                            " multiples since 1970-01-01 UTC"}
    schemas["ScheduleInput"] = {
        "type": "object", "required": ["name", "job"], "additionalProperties": False,
        "oneOf": [{"required": ["cron"]}, {"required": ["every"]}],
        "properties": {
            "name": {"type": "string", "pattern": JOB_ID_PATTERN},
            "cron": {"type": "string", "pattern": CRON_PATTERN,
                     "description": "five fields: minute hour day-of-month month day-of-week"},
            "every": every,
            "timezone": {"type": "string", "pattern": "^[A-Za-z0-9_+./-]{1,64}$", "default": "UTC",
                         "description": "an IANA time zone the cron expression follows, with its daylight saving"},
            "overlap": {"type": "string", "enum": ["skip", "allow"], "default": "skip",
                        "description": "skip: a slot is skipped while the schedule has an unfinished job"},
            "job": schedule_job,
        },
    }
    schemas["Schedule"] = {
        "type": "object",
        "required": ["name", "cron", "every", "timezone", "overlap", "paused", "next_run_at", "last_run_at",
                     "last_job_id", "job"],
        "properties": {
            "name": {"type": "string"}, "cron": {"type": ["string", "null"]}, "every": {"type": ["string", "null"]},
            "timezone": {"type": "string"}, "overlap": {"type": "string", "enum": ["skip", "allow"]},
            "paused": {"type": "boolean"}, "next_run_at": NULLABLE_TIME,
            "last_run_at": {**NULLABLE_TIME, "description": "the slot (or, run by hand, the time) of its last job"},
            "last_job_id": {"type": ["string", "null"]}, "job": {"type": "object"},
            "created_at": NULLABLE_TIME, "updated_at": NULLABLE_TIME,
        },
    }
    return schemas


def paths():
    """The routes of schedules and reruns."""
    one = {"200": _json(_ref("Schedule"), "the schedule"), **_errors(400, 401, 403, 404, 413, 503)}
    return {
        "/schedules": {
            "get": {
                "summary": "Every schedule with its next and last run (as `queuectl schedule list --json`)",
                "operationId": "listSchedules",
                "responses": {"200": _json({"type": "object", "required": ["schedules"], "properties": {
                    "schedules": {"type": "array", "items": _ref("Schedule")}}}, "the schedules"),
                    **_errors(400, 401, 503)},
            },
            "post": {
                "summary": "Add a schedule (as `queuectl schedule add`)",
                "operationId": "addSchedule",
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": _ref("ScheduleInput")}}},
                "responses": {"201": _json(_ref("Schedule"), "the new schedule"),
                              **_errors(400, 401, 403, 409, 413, 503)},
            },
        },
        "/schedules/{name}": {
            "get": {"summary": "One schedule", "operationId": "getSchedule", "parameters": [NAME_PARAMETER],
                    "responses": {"200": _json(_ref("Schedule"), "the schedule"), **_errors(400, 401, 404, 503)}},
            "delete": {"summary": "Delete a schedule (the jobs it made stay)", "operationId": "removeSchedule",
                       "parameters": [NAME_PARAMETER],
                       "responses": {"200": _json({"type": "object", "required": ["name", "removed"], "properties": {
                           "name": {"type": "string"}, "removed": {"const": True}}}, "deleted"),
                           **_errors(400, 401, 403, 404, 413, 503)}},
        },
        "/schedules/{name}/pause": {"post": {
            "summary": "Stop firing a schedule (its slots meanwhile are not caught up)",
            "operationId": "pauseSchedule", "parameters": [NAME_PARAMETER], "responses": one}},
        "/schedules/{name}/resume": {"post": {
            "summary": "Fire a paused schedule again, from its next slot",
            "operationId": "resumeSchedule", "parameters": [NAME_PARAMETER], "responses": one}},
        "/schedules/{name}/run": {"post": {
            "summary": "Enqueue one job of the schedule now (as `queuectl schedule run`)",
            "operationId": "runSchedule", "parameters": [NAME_PARAMETER],
            "responses": {"201": _json(_ref("Job"), "the new job"), **_errors(400, 401, 403, 404, 413, 503)}}},
        "/jobs/{job_id}/rerun": {"post": {
            "summary": "A new job with the spec of this one, in any state (as `queuectl rerun`)",
            "operationId": "rerunJob", "parameters": [JOB_ID_PARAMETER],
            "responses": {"201": _json(_ref("Job"), "the new job"), **_errors(400, 401, 403, 404, 409, 413, 503)}}},
    }
