"""The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json and checked by schemathesis."""

from queuectl_core import settings as settings_module
from queuectl_core.durations import MAXIMUM_SECONDS
from queuectl_core.durations import PATTERN as DURATION_PATTERN
from queuectl_core.lifecycle import FINISHED_STATES, STATES
from queuectl_core.store import Store
from queuectl_core.validation import (
    AFTER_LIMIT,
    COMMAND_LIMIT,
    MAX_RETRIES_LIMIT,
    PRIORITY_LIMIT,
    SECONDS_LIMIT,
)

JOB_ID_PATTERN = "^[A-Za-z0-9._:-]{1,128}$"
TIME = {"type": "string", "description": "ISO-8601 UTC time with milliseconds, e.g. 2026-11-29T01:49:17.123Z"}
NULLABLE_TIME = {**TIME, "type": ["string", "null"]}
DURATION = {"oneOf": [{"type": "number", "minimum": 0, "maximum": MAXIMUM_SECONDS},
                      {"type": "string", "pattern": DURATION_PATTERN}],
            "description": "seconds, or a text such as 30s, 90m, 12h, 7d, 2w"}
EXIT_CODES = {"type": "array", "maxItems": 256,
              "items": {"oneOf": [{"type": "integer", "minimum": 1, "maximum": 255}, {"const": "timeout"}]}}


def _ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema, description, headers=None):
    response = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def _errors(*statuses):
    meaning = {
        400: "bad input: a malformed body, a bad parameter or a refused value",
        401: "missing or wrong API token",
        403: "a change asked by a viewer (the read-only QUEUECTL_API_READ_TOKEN, or a session logged in with it),"
             " or by a dashboard session without its X-CSRF-Token header",
        404: "no such job (or no such run of it, or no such schedule)",
        409: "conflict with the queue's state: the job id (or schedule name) exists already, `after` names an"
             " unknown job, or the job's state does not allow the action",
        413: "request body too large",
        503: "the database does not answer",
    }
    return {str(status): _json(_ref("Error"), meaning[status]) for status in statuses}


TOO_MANY_FAILURES = _json(
    {"$ref": "#/components/schemas/Error"},
    "too many wrong tokens from this client address: even the right token is refused until Retry-After seconds"
    " have passed", headers={"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer",
                                                                                          "minimum": 1}}})


def _query(name, schema, description):
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


JOB_ID_PARAMETER = {"name": "job_id", "in": "path", "required": True,
                    "schema": {"type": "string", "pattern": JOB_ID_PATTERN}}


def _setting_schema(setting):
    if setting.kind == "choice":
        return {"type": "string", "enum": list(setting.choices), "description": setting.help}
    if setting.kind == "duration":
        return {**DURATION, "description": setting.help}
    return {"type": "integer" if setting.kind == "integer" else "number", "minimum": setting.minimum,
            "maximum": settings_module._MAXIMUM[setting.kind], "description": setting.help}


def _schemas():
    job_properties = {
        "id": {"type": "string"},
        "command": {"type": "string"},
        "state": {"type": "string", "enum": list(STATES)},
        "attempts": {"type": "integer", "minimum": 0, "description": "failed runs"},
        "max_retries": {"type": "integer", "minimum": 0},
        "priority": {"type": "integer"},
        "run_at": TIME,
        "timeout": {"type": ["number", "null"]},
        "created_at": TIME,
        "updated_at": TIME,
        "last_error": {"type": ["string", "null"]},
        "exit_code": {"type": ["integer", "null"]},
        "worker_id": {"type": ["string", "null"]},
        "retry_on": {**EXIT_CODES, "type": ["array", "null"], "description": "exit codes that are retried"},
        "no_retry_on": {**EXIT_CODES, "type": ["array", "null"], "description": "exit codes that are not"},
        "after": {"type": "array", "items": {"type": "string"}, "description": "jobs that must complete first"},
    }
    figures = {"type": "object", "properties": {"cpu_percent": {"type": "number"},
                                                "memory_bytes": {"type": "integer"}}}
    return {
        "Error": {
            "type": "object", "required": ["error"],
            "properties": {
                "error": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"},
                           "description": "one message per bad field (job and settings input)"},
                "index": {"type": "integer", "description": "POST /jobs/batch: the index of the bad job"},
            },
        },
        "JobInput": {
            "type": "object", "required": ["command"], "additionalProperties": False,
            "not": {"required": ["run_at", "delay"]},
            "properties": {
                "command": {"type": "string", "minLength": 1, "maxLength": COMMAND_LIMIT,
                            "pattern": "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$",
                            "description": "run with /bin/sh -c"},
                "id": {"type": "string", "pattern": JOB_ID_PATTERN, "description": "unique; generated if absent"},
                "max_retries": {"type": "integer", "minimum": 0, "maximum": MAX_RETRIES_LIMIT},
                "priority": {"type": "integer", "minimum": -PRIORITY_LIMIT, "maximum": PRIORITY_LIMIT},
                "run_at": {"type": "string", "format": "date-time", "description": "with a zone"},
                "delay": {"type": "number", "minimum": 0, "maximum": SECONDS_LIMIT},
                "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": SECONDS_LIMIT},
                "after": {"type": "array", "maxItems": AFTER_LIMIT,
                          "items": {"type": "string", "pattern": JOB_ID_PATTERN},
                          "description": "ids of existing jobs that must complete first (an unknown one: 409)"},
                "retry_on": {**EXIT_CODES, "description": "only these exit codes (1-255) are retried; a timeout"
                                                          " is retried unless no_retry_on names \"timeout\""},
                "no_retry_on": {**EXIT_CODES, "description": "these exit codes (or \"timeout\") are not retried,"
                                                             " even when retry_on names them too"},
            },
        },
        "Job": {"type": "object", "required": list(job_properties), "properties": job_properties},
        "Run": {
            "type": "object",
            "required": ["attempt", "started_at", "finished_at", "exit_code", "error", "worker_id", "output"],
            "properties": {
                "attempt": {"type": "integer", "minimum": 1},
                "started_at": TIME,
                "finished_at": NULLABLE_TIME,
                "exit_code": {"type": ["integer", "null"]},
                "error": {"type": ["string", "null"]},
                "worker_id": {"type": "string"},
                "output": {"type": ["string", "null"], "description": "tail of stdout and stderr"},
            },
        },
        "JobDetail": {
            "allOf": [_ref("Job"), {"type": "object", "required": ["history", "history_total"], "properties": {
                "history": {"type": "array", "items": _ref("Run"), "description": "one page of runs, oldest first"},
                "history_total": {"type": "integer", "minimum": 0, "description": "the job's runs in all"}}}],
        },
        "AuditEntry": {
            "type": "object", "required": ["at", "actor", "action", "target", "details"],
            "properties": {"at": TIME, "actor": {"type": "string", "description": "api:operator or cli:USER@HOST"},
                           "action": {"type": "string", "description": "cancel, retry, retry-all, purge, dlq-purge,"
                                      " pause, resume, config-set, worker-stop, enqueue or enqueue-batch"},
                           "target": {"type": ["string", "null"]}, "details": {"type": "object"}},
        },
        "Worker": {
            "type": "object", "required": ["id", "host", "pid", "heartbeat_at", "current_job"],
            "properties": {
                "id": {"type": "string"}, "host": {"type": "string"}, "pid": {"type": "integer"},
                "started_at": TIME, "heartbeat_at": TIME, "stop_requested": {"type": "boolean"},
                "current_job": {"type": ["string", "null"]}, "current_job_started_at": NULLABLE_TIME,
                "stats": {"type": ["object", "null"], "properties": {
                    "worker": figures, "job": {**figures, "type": ["object", "null"]}}},
            },
        },
        "Stats": {
            "type": "object", "required": ["jobs", "workers", "paused"],
            "properties": {
                "jobs": {"type": "object", "required": list(STATES),
                         "properties": {state: {"type": "integer", "minimum": 0} for state in STATES}},
                "workers": {"type": "array", "items": _ref("Worker")},
                "paused": {"type": "boolean", "description": "true after `queuectl pause`: workers claim nothing"},
            },
        },
        "RunOutput": {
            "type": "object",
            "required": ["id", "state", "runs", "attempt", "started_at", "finished_at", "output", "output_offset",
                         "running"],
            "properties": {
                "id": {"type": "string"},
                "state": {"type": "string", "enum": list(STATES), "description": "the job's state"},
                "runs": {"type": "integer", "minimum": 0, "description": "how many runs the job has had"},
                "attempt": {"type": ["integer", "null"], "description": "this run's number; null: not run yet"},
                "started_at": NULLABLE_TIME,
                "finished_at": NULLABLE_TIME,
                "output": {"type": "string", "description": "the kept tail of stdout and stderr (64 KiB)"},
                "output_offset": {"type": "integer", "minimum": 0,
                                  "description": "bytes of output before the kept tail"},
                "running": {"type": "boolean"},
            },
        },
        "Paused": {
            "type": "object", "required": ["paused", "paused_since"],
            "properties": {"paused": {"type": "boolean"}, "paused_since": NULLABLE_TIME},
        },
        "PurgeResult": {
            "type": "object", "required": ["count", "dry_run"],
            "properties": {"count": {"type": "integer", "minimum": 0,
                                     "description": "jobs deleted (with dry_run: that would be)"},
                           "dry_run": {"type": "boolean"}},
        },
        "Settings": {
            "type": "object", "required": list(settings_module.SETTINGS),
            "properties": {name: {"type": "string" if s.kind == "choice" else "number", "description": s.help}
                           for name, s in settings_module.SETTINGS.items()},
        },
        "SettingsChange": {
            "type": "object", "minProperties": 1, "additionalProperties": False,
            "properties": {name: _setting_schema(s) for name, s in settings_module.SETTINGS.items()},
        },
        "Throughput": {
            "type": "object", "required": ["minutes"],
            "properties": {"minutes": {"type": "array", "items": {
                "type": "object", "required": ["minute", "succeeded", "failed"],
                "properties": {"minute": TIME, "succeeded": {"type": "integer", "minimum": 0},
                               "failed": {"type": "integer", "minimum": 0}}}}},
        },
    }


def _paths():
    total = {"X-Total-Count": {"description": "how many jobs match, over all pages",
                               "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
    return {
        "/stats": {"get": {
            "summary": "Job counts per state and the live workers (as `queuectl status --json`)",
            "operationId": "getStats",
            "responses": {"200": _json(_ref("Stats"), "counts and workers"), **_errors(400, 401, 503)},
        }},
        "/jobs": {
            "get": {
                "summary": "List jobs, newest first by default",
                "operationId": "listJobs",
                "parameters": [
                    _query("state", {"type": "string", "enum": list(STATES)}, "only jobs in this state"),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}, "page size"),
                    _query("offset", {"type": "integer", "minimum": 0, "maximum": 10**12, "default": 0},
                           "jobs to skip"),
                    _query("q", {"type": "string", "maxLength": 200, "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f]*$"},
                           "search: a substring of the id or the command"),
                    _query("sort", {"type": "string", "enum": list(Store.JOB_SORTS), "default": "created_at"},
                           "sort key"),
                    _query("order", {"type": "string", "enum": ["asc", "desc"], "default": "desc"}, "sort order"),
                    *(_query(name, {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}, f"jobs of this {name}")
                      for name in ("queue", "tag")),
                ],
                "responses": {
                    "200": _json({"type": "object", "required": ["jobs"],
                                  "properties": {"jobs": {"type": "array", "items": _ref("Job")}}},
                                 "one page of job records", headers=total),
                    **_errors(400, 401, 503),
                },
            },
            "post": {
                "summary": "Enqueue a job",
                "operationId": "enqueueJob",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("JobInput")}}},
                "responses": {"201": _json(_ref("Job"), "the new job's record"),
                              "200": _json(_ref("Job"), "an unfinished job holds its unique_key: that job's record"),
                              **_errors(400, 401, 403, 409, 413, 503)},
            },
        },
        "/jobs/batch": {"post": {
            "summary": "Enqueue up to 10,000 jobs, all or nothing; an error names the index of the first bad job",
            "operationId": "enqueueJobs",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "array", "minItems": 1, "maxItems": 10_000, "items": _ref("JobInput")}}}},
            "responses": {"201": _json({"type": "object", "required": ["ids"], "properties": {"ids": {
                "type": "array", "items": {"type": "string"}, "description": "in the order of the jobs"}}},
                "every job was added"), **_errors(400, 401, 403, 409, 413, 503)},
        }},
        "/jobs/{job_id}": {"get": {
            "summary": "One job with its latest runs; history_offset pages back through older ones",
            "operationId": "getJob",
            "parameters": [JOB_ID_PARAMETER,
                           _query("history_limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                                  "runs in the page"),
                           _query("history_offset", {"type": "integer", "minimum": 0, "maximum": 10**12,
                                                     "default": 0}, "newest runs to skip")],
            "responses": {"200": _json(_ref("JobDetail"), "the job and a page of its runs, oldest first"),
                          **_errors(400, 401, 404, 503)},
        }},
        "/jobs/{job_id}/retry": {"post": {
            "summary": "Move a dead job back to pending with attempts 0",
            "operationId": "retryJob",
            "parameters": [JOB_ID_PARAMETER],
            "responses": {"200": _json(_ref("Job"), "the job, now pending"),
                          **_errors(400, 401, 403, 404, 409, 413, 503)},
        }},
        "/dlq/retry-all": {"post": {
            "summary": "Move every dead job back to pending",
            "operationId": "retryAllDead",
            "responses": {"200": _json({"type": "object", "required": ["retried"],
                                        "properties": {"retried": {"type": "integer", "minimum": 0}}},
                                       "how many jobs were retried"),
                          **_errors(400, 401, 403, 413, 503)},
        }},
        "/jobs/{job_id}/cancel": {"post": {
            "summary": "Cancel a job (as `queuectl cancel`): a pending or failed one at once (200); a processing"
                       " one is stopped by its worker within seconds (202)",
            "operationId": "cancelJob",
            "parameters": [JOB_ID_PARAMETER],
            "responses": {"200": _json(_ref("Job"), "the job, now cancelled"),
                          "202": _json(_ref("Job"), "the job, still processing: its worker stops it"),
                          **_errors(400, 401, 403, 404, 409, 413, 503)},
        }},
        "/jobs/{job_id}/logs": {"get": {
            "summary": "The output of the job's latest run, or of run `attempt` (as `queuectl logs`); poll it"
                       " while `running` to follow a run live",
            "operationId": "getJobLogs",
            "parameters": [JOB_ID_PARAMETER,
                           _query("attempt", {"type": "integer", "minimum": 1, "maximum": 10**9}, "run number")],
            "responses": {"200": _json(_ref("RunOutput"), "the run's output"), **_errors(400, 401, 404, 503)},
        }},
        "/jobs/{job_id}/wait": {"get": {
            "summary": "Wait up to `timeout` seconds for the job to end (completed, dead or cancelled)",
            "operationId": "waitForJob",
            "parameters": [JOB_ID_PARAMETER,
                           _query("timeout", {"type": "integer", "minimum": 0, "maximum": 20, "default": 10},
                                  "seconds to wait at most (each waiting request holds one server worker)")],
            "responses": {"200": _json({"type": "object", "required": ["done", "job"],
                                        "properties": {"done": {"type": "boolean"}, "job": _ref("Job")}},
                                       "whether the job has ended, and its record"),
                          **_errors(400, 401, 404, 503)},
        }},
        "/pause": {"post": {
            "summary": "Stop every worker from claiming jobs; running jobs finish (as `queuectl pause`)",
            "operationId": "pauseQueue",
            "responses": {"200": _json(_ref("Paused"), "the queue is paused"), **_errors(400, 401, 403, 413, 503)},
        }, "get": {"summary": "Whether the queue is paused, and since when", "operationId": "getPause",
                   "responses": {"200": _json(_ref("Paused"), "the pause"), **_errors(400, 401, 503)}}},
        "/resume": {"post": {
            "summary": "Let workers claim jobs again (as `queuectl resume`)",
            "operationId": "resumeQueue",
            "responses": {"200": _json(_ref("Paused"), "the queue runs"), **_errors(400, 401, 403, 413, 503)},
        }},
        "/purge": {"post": {
            "summary": "Delete finished jobs with their history (as `queuectl purge`)",
            "operationId": "purgeJobs",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "required": ["states"], "additionalProperties": False,
                "properties": {
                    "states": {"type": "array", "minItems": 1, "items": {"enum": list(FINISHED_STATES)}},
                    "older_than": {**DURATION, "description": "only jobs that ended longer ago (default 0)"},
                    "dry_run": {"type": "boolean", "description": "only count them", "default": False},
                }}}}},
            "responses": {"200": _json(_ref("PurgeResult"), "how many jobs were (or would be) deleted"),
                          **_errors(400, 401, 403, 413, 503)},
        }},
        "/dlq/purge": {"post": {
            "summary": "Delete the dead jobs with their history (as `queuectl dlq purge`)",
            "operationId": "purgeDead",
            "requestBody": {"required": False, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": False,
                "properties": {
                    "older_than": {**DURATION, "description": "only jobs that died longer ago (default 0)"},
                    "dry_run": {"type": "boolean", "description": "only count them", "default": False},
                }}}}},
            "responses": {"200": _json(_ref("PurgeResult"), "how many jobs were (or would be) deleted"),
                          **_errors(400, 401, 403, 413, 503)},
        }},
        "/workers": {"get": {
            "summary": "The live workers",
            "operationId": "listWorkers",
            "responses": {"200": _json({"type": "object", "required": ["workers"],
                                        "properties": {"workers": {"type": "array", "items": _ref("Worker")}}},
                                       "the workers"),
                          **_errors(400, 401, 503)},
        }},
        "/workers/stop": {"post": {
            "summary": "Ask every live worker to finish its current job and exit (as `queuectl worker stop`)",
            "operationId": "stopWorkers",
            "responses": {"202": _json({"type": "object", "required": ["stop_requested"],
                                        "properties": {"stop_requested": {"type": "integer", "minimum": 0}}},
                                       "how many workers were asked to stop"),
                          **_errors(400, 401, 403, 413, 503)},
        }},
        "/settings": {
            "get": {
                "summary": "Every setting (as `queuectl config get --json`)",
                "operationId": "getSettings",
                "responses": {"200": _json(_ref("Settings"), "the settings"), **_errors(400, 401, 503)},
            },
            "put": {
                "summary": "Change settings, checked as `queuectl config set` checks them; all or nothing",
                "operationId": "changeSettings",
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": _ref("SettingsChange")}}},
                "responses": {"200": _json(_ref("Settings"), "every setting after the change"),
                              **_errors(400, 401, 403, 413, 503)},
            },
        },
        "/throughput": {"get": {
            "summary": "Runs finished per minute, succeeded and failed, oldest minute first",
            "operationId": "getThroughput",
            "parameters": [_query("minutes", {"type": "integer", "minimum": 1, "maximum": 1440, "default": 60},
                                  "how many minutes back")],
            "responses": {"200": _json(_ref("Throughput"), "one entry per minute"), **_errors(400, 401, 503)},
        }},
        "/audit": {"get": {
            "summary": "The audit log: operators' actions from the CLI and the API, newest first",
            "operationId": "getAuditLog",
            "parameters": [
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}, "page size"),
                _query("offset", {"type": "integer", "minimum": 0, "maximum": 10**12, "default": 0}, "entries to skip"),
            ],
            "responses": {"200": _json({"type": "object", "required": ["entries"], "properties": {
                "entries": {"type": "array", "items": _ref("AuditEntry")}}}, "one page of entries"),
                          **_errors(400, 401, 503)},
        }},
        "/openapi.json": {"get": {
            "summary": "This document",
            "operationId": "getOpenApi",
            "responses": {"200": _json({"type": "object"}, "the OpenAPI document"), **_errors(400, 401)},
        }},
    }


def _with_throttle(paths):
    """Every operation may answer 429: a bearer token is checked only while its address is not throttled."""
    for item in paths.values():
        for operation in item.values():
            operation["responses"]["429"] = TOO_MANY_FAILURES
    return paths


def document():
    """The OpenAPI document as a dict."""
    from . import openapi_queues, openapi_schedules  # they build on this module's helpers
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "queuectl API",
            "version": "1",
            "description": "A job queue whose jobs are shell commands. Every route needs "
                           "`Authorization: Bearer <QUEUECTL_API_TOKEN>` (or a dashboard session cookie plus an "
                           "X-CSRF-Token header on state-changing requests). The viewer token "
                           "QUEUECTL_API_READ_TOKEN reads every GET route; any change gets 403. Wrong tokens from "
                           "one address are throttled (429 with Retry-After). Errors are `{\"error\": \"...\"}`.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": _with_throttle({**_paths(), **openapi_schedules.paths(), **openapi_queues.paths()}),
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "the value of QUEUECTL_API_TOKEN, or of the"
                                                              " read-only QUEUECTL_API_READ_TOKEN"}},
            "schemas": openapi_queues.add_to_schemas(openapi_schedules.add_to_schemas(_schemas())),
        },
    }
