"""The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json and checked by schemathesis."""

from queuectl_core import STATES
from queuectl_core import settings as settings_module
from queuectl_core.store import SqliteStore
from queuectl_core.validation import (
    COMMAND_LIMIT,
    MAX_RETRIES_LIMIT,
    PRIORITY_LIMIT,
    SECONDS_LIMIT,
)

JOB_ID_PATTERN = "^[A-Za-z0-9._:-]{1,128}$"
TIME = {"type": "string", "description": "ISO-8601 UTC time with milliseconds, e.g. 2026-11-29T01:49:17.123Z"}
NULLABLE_TIME = {**TIME, "type": ["string", "null"]}


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
        403: "a dashboard session request that changes state without its X-CSRF-Token header",
        404: "no such job",
        409: "conflict: the job id exists already, or the job is not dead",
        413: "request body too large",
        503: "the database does not answer",
    }
    return {str(status): _json(_ref("Error"), meaning[status]) for status in statuses}


def _query(name, schema, description):
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


JOB_ID_PARAMETER = {"name": "job_id", "in": "path", "required": True,
                    "schema": {"type": "string", "pattern": JOB_ID_PATTERN}}


def _setting_schema(setting):
    if setting.kind == "choice":
        return {"type": "string", "enum": list(setting.choices), "description": setting.help}
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
            "allOf": [_ref("Job"), {"type": "object", "required": ["history"],
                                    "properties": {"history": {"type": "array", "items": _ref("Run")}}}],
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
            "type": "object", "required": ["jobs", "workers"],
            "properties": {
                "jobs": {"type": "object", "required": list(STATES),
                         "properties": {state: {"type": "integer", "minimum": 0} for state in STATES}},
                "workers": {"type": "array", "items": _ref("Worker")},
            },
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
                    _query("sort", {"type": "string", "enum": list(SqliteStore.JOB_SORTS), "default": "created_at"},
                           "sort key"),
                    _query("order", {"type": "string", "enum": ["asc", "desc"], "default": "desc"}, "sort order"),
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
                              **_errors(400, 401, 403, 409, 413, 503)},
            },
        },
        "/jobs/{job_id}": {"get": {
            "summary": "One job with its history of runs",
            "operationId": "getJob",
            "parameters": [JOB_ID_PARAMETER],
            "responses": {"200": _json(_ref("JobDetail"), "the job and its runs, oldest first"),
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
        "/openapi.json": {"get": {
            "summary": "This document",
            "operationId": "getOpenApi",
            "responses": {"200": _json({"type": "object"}, "the OpenAPI document"), **_errors(400, 401)},
        }},
    }


def document():
    """The OpenAPI document as a dict."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "queuectl API",
            "version": "1",
            "description": "A job queue whose jobs are shell commands. Every route needs "
                           "`Authorization: Bearer <QUEUECTL_API_TOKEN>` (or a dashboard session cookie plus an "
                           "X-CSRF-Token header on state-changing requests). Errors are `{\"error\": \"...\"}`.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "the value of QUEUECTL_API_TOKEN"}},
            "schemas": _schemas(),
        },
    }
