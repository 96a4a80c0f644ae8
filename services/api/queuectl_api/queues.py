"""Named queues under /api/v1: list them, limit their concurrency or their rate of starts, pause or resume one.

The routes of `queuectl queue list|limit|rate` and `queuectl pause|resume --queue`. They check their credentials
as the api blueprint does (the same token, session and CSRF rules) and their input with the shared package's
checks, as the CLI does; every change is recorded in the audit log with its actor."""

import re

from flask import Blueprint
from queuectl_core.errors import InvalidInput
from queuectl_core.validation import check_queue_limit, check_queue_name, parse_rate

from . import auth, params
from .audit import actor
from .storage import get_store

blueprint = Blueprint("queues", __name__, url_prefix="/api/v1")
blueprint.before_request(auth.check_api_request)

# The API takes a rate in one spelling only (no spaces, no leading zeros), so that the OpenAPI document's pattern
# says exactly what is accepted: N from 1 to 100000 per a period of at most a day (86400s, 1440m, 24h).
RATE_TEXT = re.compile(
    r"([1-9][0-9]{0,4}|100000)/"
    r"(([1-9][0-9]{0,3}|[1-7][0-9]{4}|8[0-5][0-9]{3}|86[0-3][0-9]{2}|86400)?s"
    r"|([1-9][0-9]{0,2}|1[0-3][0-9]{2}|14[0-3][0-9]|1440)?m"
    r"|([1-9]|1[0-9]|2[0-4])?h)")


@blueprint.get("/queues")
def list_queues():
    """Every queue that holds jobs or has a setting (as `queuectl queue list --json`)."""
    params.query_args(())
    return {"queues": get_store().queue_list()}


@blueprint.get("/queues/<name>")
def show_queue(name):
    """One queue's entry (a queue without jobs or settings: zeros and nulls); 400 for a malformed name."""
    params.query_args(())
    return get_store().queue_info(check_queue_name(name))


@blueprint.put("/queues/<name>/limit")
def limit_queue(name):
    """{"limit": N|null}: at most N jobs of the queue processing at once (null: no limit); the queue's entry."""
    params.query_args(())
    check_queue_name(name)
    value = _only_key(params.json_body(), "limit")
    return get_store().set_queue_limit(name, check_queue_limit(value), actor=actor())


@blueprint.put("/queues/<name>/rate")
def rate_queue(name):
    """{"rate": "10/m"|null}: at most N job starts of the queue in any window of one period (null: no rate)."""
    params.query_args(())
    check_queue_name(name)
    value = _only_key(params.json_body(), "rate")
    count, period = (None, None) if value is None else _rate(value)
    return get_store().set_queue_rate(name, count, period, actor=actor())


@blueprint.post("/queues/<name>/pause")
def pause_queue(name):
    """Stop workers from claiming jobs of the queue (its running jobs finish): its entry, with "changed": false
    when it was paused already."""
    params.query_args(())
    store = get_store()
    changed = store.pause(queue=check_queue_name(name), actor=actor())
    return {**store.queue_info(name), "changed": changed}


@blueprint.post("/queues/<name>/resume")
def resume_queue(name):
    """Let workers claim the queue's jobs again (a global pause stays): its entry, with "changed": false when it
    was not paused."""
    params.query_args(())
    store = get_store()
    changed = store.resume(queue=check_queue_name(name), actor=actor())
    return {**store.queue_info(name), "changed": changed}


def _only_key(body, key):
    """body[key] of a body that holds that key and no other; InvalidInput naming what is wrong otherwise."""
    unknown = [name for name in body if name != key]
    if unknown:
        raise InvalidInput(f"unknown key '{params.clip(unknown[0])}' (allowed: {key})")
    if key not in body:
        raise InvalidInput(f"{key} is required (null for none)")
    return body[key]


def _rate(value):
    """(count, period seconds) of an API rate; InvalidInput naming the rate otherwise."""
    count, period = parse_rate(value)  # its message for anything the CLI refuses too
    if not RATE_TEXT.fullmatch(value):
        raise InvalidInput(f"rate must be written as N/PERIOD without spaces or leading zeros (e.g. 10/m, 100/30s),"
                           f" got {params.clip(value)!r}")
    return count, period
