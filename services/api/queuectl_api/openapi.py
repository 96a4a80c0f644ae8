"""The OpenAPI 3.1 document of /api/v1, served at /api/v1/openapi.json and checked by schemathesis. The parts of
jobs are in openapi_jobs, those of schedules in openapi_schedules; this module holds the shared pieces and the rest."""

from queuectl_core import settings as settings_module
from queuectl_core.durations import MAXIMUM_SECONDS
from queuectl_core.durations import PATTERN as DURATION_PATTERN
from queuectl_core.lifecycle import FINISHED_STATES, STATES

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
    from . import openapi_jobs  # it builds on this module's helpers

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
        **openapi_jobs.schemas(),
        "AuditEntry": {
            "type": "object", "required": ["at", "actor", "action", "target", "details"],
            "properties": {"at": TIME, "actor": {"type": "string", "description": "api:operator or cli:USER@HOST"},
                           "action": {"type": "string", "description": "cancel, retry, retry-all, purge, dlq-purge,"
                                      " pause, resume, config-set, worker-stop, enqueue or enqueue-batch"},
                           "target": {"type": ["string", "null"]}, "details": {"type": "object"}},
        },
        "Worker": {
            "type": "object", "required": ["id", "host", "pid", "heartbeat_at", "concurrency", "jobs", "current_job"],
            "properties": {
                "id": {"type": "string"}, "host": {"type": "string"}, "pid": {"type": "integer"},
                "started_at": TIME, "heartbeat_at": TIME, "stop_requested": {"type": "boolean"},
                "concurrency": {"type": "integer", "minimum": 1,
                                "description": "its slots: the jobs it runs at once at most (`worker start"
                                               " --concurrency`; 1 for a plain worker)"},
                "jobs": {"type": "array", "description": "the jobs it runs now, longest running first (as many as"
                                                         " its busy slots)",
                         "items": {"type": "object", "required": ["id", "started_at"],
                                   "properties": {"id": {"type": "string"}, "started_at": NULLABLE_TIME}}},
                "current_job": {"type": ["string", "null"], "description": "the first of `jobs`, or null (kept for"
                                                                           " clients older than slots)"},
                "current_job_started_at": NULLABLE_TIME,
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
        "RunOutput": openapi_jobs.run_output(),
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
    from . import openapi_jobs

    return {
        "/stats": {"get": {
            "summary": "Job counts per state and the live workers (as `queuectl status --json`)",
            "operationId": "getStats",
            "responses": {"200": _json(_ref("Stats"), "counts and workers"), **_errors(400, 401, 503)},
        }},
        **openapi_jobs.paths(),
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
