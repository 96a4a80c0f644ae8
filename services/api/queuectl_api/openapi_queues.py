"""The OpenAPI parts of named queues: their list, limit, rate, pause and resume (merged into openapi.document())."""

from queuectl_core.lifecycle import STATES
from queuectl_core.validation import CONCURRENCY_LIMIT_MAX

from .openapi import NULLABLE_TIME, _errors, _json, _ref
from .queues import RATE_TEXT

QUEUE_NAME_PATTERN = "^[A-Za-z0-9._-]{1,64}$"
QUEUE_PARAMETER = {"name": "name", "in": "path", "required": True,
                   "schema": {"type": "string", "pattern": QUEUE_NAME_PATTERN},
                   "description": "the queue's name: 1-64 of A-Z a-z 0-9 . _ -"}


def add_to_schemas(schemas):
    """Add the queues' schemas."""
    schemas["Queue"] = {
        "type": "object", "required": ["name", "counts", "limit", "rate", "paused", "paused_since"],
        "properties": {
            "name": {"type": "string"},
            "counts": {"type": "object", "required": list(STATES),
                       "properties": {state: {"type": "integer", "minimum": 0} for state in STATES},
                       "description": "the queue's jobs per state"},
            "limit": {"type": ["integer", "null"], "minimum": 1,
                      "description": "at most this many of its jobs processing at once; null: no limit"},
            "rate": {"type": ["string", "null"],
                     "description": "at most N job starts per period (a sliding window), e.g. 10/m; null: none"},
            "paused": {"type": "boolean"},
            "paused_since": NULLABLE_TIME,
        },
    }
    schemas["QueueChange"] = {
        **schemas["Queue"], "required": [*schemas["Queue"]["required"], "changed"],
        "properties": {**schemas["Queue"]["properties"], "changed": {
            "type": "boolean", "description": "false when the queue was paused (or running) already"}},
    }
    return schemas


def _body(key, schema):
    return {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": [key], "additionalProperties": False, "properties": {key: schema}}}}}


def paths():
    """The routes of named queues."""
    change = {"200": _json(_ref("Queue"), "the queue's entry"), **_errors(400, 401, 403, 413, 503)}
    pause_or_resume = {"200": _json(_ref("QueueChange"), "the queue's entry"), **_errors(400, 401, 403, 413, 503)}
    limit = {"type": ["integer", "null"], "minimum": 1, "maximum": CONCURRENCY_LIMIT_MAX,
             "description": "at most this many jobs of the queue processing at once, on every host; null: no limit"}
    rate = {"type": ["string", "null"], "pattern": f"^{RATE_TEXT.pattern}$",
            "description": "N/PERIOD: at most N job starts (1-100000) in any window of PERIOD (s, m or h with an"
                           " optional count, at most a day: 10/m, 100/30s, 2/h); null: no rate"}
    return {
        "/queues": {"get": {
            "summary": "Every queue that holds jobs or has a setting (as `queuectl queue list --json`)",
            "operationId": "listQueues",
            "responses": {"200": _json({"type": "object", "required": ["queues"], "properties": {
                "queues": {"type": "array", "items": _ref("Queue")}}}, "the queues"), **_errors(400, 401, 503)},
        }},
        "/queues/{name}": {"get": {
            "summary": "One queue (one without jobs or settings: zeros and nulls)", "operationId": "getQueue",
            "parameters": [QUEUE_PARAMETER],
            "responses": {"200": _json(_ref("Queue"), "the queue's entry"), **_errors(400, 401, 503)},
        }},
        "/queues/{name}/limit": {"put": {
            "summary": "Limit the queue's jobs processing at once (as `queuectl queue limit`)",
            "operationId": "setQueueLimit", "parameters": [QUEUE_PARAMETER], "requestBody": _body("limit", limit),
            "responses": change,
        }},
        "/queues/{name}/rate": {"put": {
            "summary": "Limit the queue's job starts per period (as `queuectl queue rate`)",
            "operationId": "setQueueRate", "parameters": [QUEUE_PARAMETER], "requestBody": _body("rate", rate),
            "responses": change,
        }},
        "/queues/{name}/pause": {"post": {
            "summary": "Stop workers from claiming the queue's jobs; its running jobs finish (as `queuectl pause"
                       " --queue`)",
            "operationId": "pauseNamedQueue", "parameters": [QUEUE_PARAMETER], "responses": pause_or_resume,
        }},
        "/queues/{name}/resume": {"post": {
            "summary": "Let workers claim the queue's jobs again; a global pause stays (as `queuectl resume"
                       " --queue`)",
            "operationId": "resumeNamedQueue", "parameters": [QUEUE_PARAMETER], "responses": pause_or_resume,
        }},
    }
