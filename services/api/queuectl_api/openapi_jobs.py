"""The OpenAPI parts of jobs: their input, records, runs and output, and the routes under /jobs (merged into
openapi.document())."""

from queuectl_core.lifecycle import STATES
from queuectl_core.store import Store
from queuectl_core.validation import (
    AFTER_LIMIT,
    COMMAND_LIMIT,
    MAX_RETRIES_LIMIT,
    PRIORITY_LIMIT,
    SECONDS_LIMIT,
)

from .openapi import (
    EXIT_CODES,
    JOB_ID_PARAMETER,
    JOB_ID_PATTERN,
    NULLABLE_TIME,
    TIME,
    _errors,
    _json,
    _query,
    _ref,
)


def schemas():
    """The job schemas: JobInput, Job, Run and JobDetail, in this order."""
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
    return {
        "JobInput": {
            "type": "object", "required": ["command"], "additionalProperties": False,
            "not": {"required": ["run_at", "delay"]},
            "properties": {
                "command": {"type": "string", "minLength": 1, "maxLength": COMMAND_LIMIT,
                            # \s as Python's str.isspace() sees it too (it counts U+001C-U+001F and U+0085)
                            "pattern": "^[^\\u0000]*[^\\s\\u0000\\u001c-\\u001f\\u0085][^\\u0000]*$",
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
    }


def run_output():
    """The RunOutput schema (a run's output, as `queuectl logs` reads it)."""
    return {
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
    }


def paths():
    """The routes of jobs, from /jobs to /jobs/{job_id}/wait, in the document's order."""
    total = {"X-Total-Count": {"description": "how many jobs match, over all pages",
                               "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
    return {
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
    }
