"""The JSON API under /api/v1: the contract's routes plus what the dashboard needs."""

from flask import Blueprint, jsonify, request
from queuectl_core import batch
from queuectl_core.errors import InvalidInput, QueueError
from queuectl_core.lifecycle import STATES
from queuectl_core.store import Store
from queuectl_core.validation import check_job

from . import auth, fields, openapi, params
from .audit import actor
from .errors import error_response
from .storage import get_store

blueprint = Blueprint("api", __name__, url_prefix="/api/v1")

MAX_LIMIT = 1000
MAX_OFFSET = 10**12
MAX_QUERY = 200
HISTORY_LIMIT = 100  # runs a job's detail holds unless asked for another page
# A batch's body may be larger than one job's (2 MiB): ~3 KiB per job of a full batch.
BATCH_BODY_BYTES = 32 * 1024 * 1024


@blueprint.before_request
def require_credentials():
    """Every /api/v1 route needs the bearer token or a dashboard session (plus CSRF to change state)."""
    auth.check_api_request()


@blueprint.get("/stats")
def stats():
    """Job counts and live workers: the object `queuectl status --json` prints."""
    params.query_args(())
    return get_store().status()


@blueprint.get("/jobs")
def list_jobs():
    """Jobs, newest first by default, filtered by state, queue, tag and search text; X-Total-Count holds the match
    count. A malformed queue or tag: 400."""
    args = params.query_args(("state", "limit", "offset", "q", "sort", "order", "queue", "tag"))
    state = params.choice_arg(args, "state", STATES)
    limit = params.integer_arg(args, "limit", 50, 1, MAX_LIMIT)
    offset = params.integer_arg(args, "offset", 0, 0, MAX_OFFSET)
    query = params.text_arg(args, "q", MAX_QUERY)
    sort = params.choice_arg(args, "sort", tuple(Store.JOB_SORTS), "created_at")
    order = params.choice_arg(args, "order", ("asc", "desc"), "desc")
    queue = params.text_arg(args, "queue", MAX_QUERY)
    tag = params.text_arg(args, "tag", MAX_QUERY)
    jobs, total = get_store().search_jobs(state, query, sort, order == "desc", limit, offset, queue=queue, tag=tag)
    response = jsonify(jobs=jobs)
    response.headers["X-Total-Count"] = str(total)
    return response


@blueprint.post("/jobs")
def enqueue():
    """Add one job from a JSON object: 201 and its record; 400 names the bad key; 409 on a duplicate id; 200 and
    the existing job's record when an unfinished job holds its unique_key (nothing added)."""
    params.query_args(())
    job = params.json_body()
    try:
        spec = check_job(job)
    except InvalidInput as error:
        return error_response(str(error), 400, fields=fields.job_field_errors(job) or {"job": str(error)})
    record, created = get_store().enqueue_or_find(spec, actor=actor())
    return record, 201 if created else 200


@blueprint.post("/jobs/batch")
def enqueue_batch():
    """Add up to 10,000 jobs from a JSON array, all or nothing: 201 {"ids": [...]} in the array's order; 400 names
    the index (from 0) of the first bad job; 409 names the index of a job whose id exists (or whose `after` names
    an unknown job)."""
    params.query_args(())
    request.max_content_length = BATCH_BODY_BYTES
    jobs = params.json_body(list, "a JSON array of job objects")
    try:
        ids = batch.enqueue_batch(get_store(), jobs, actor=actor())
    except QueueError as error:
        index = getattr(error, "index", None)
        if index is None:
            raise
        return error_response(str(error), 400 if isinstance(error, InvalidInput) else 409, index=index)
    # A job whose unique_key an earlier one or an unfinished job holds adds nothing: listed, not an error.
    skipped = [{"index": line - 1, "unique_key": key, "id": holder} for line, key, holder in ids.duplicates]
    return {"ids": list(ids), "duplicates": skipped}, 201


@blueprint.get("/jobs/<job_id>")
def show_job(job_id):
    """One job with its latest runs (`history_limit`, default 100), oldest first; `history_total` counts them all
    and `history_offset` skips the newest ones, to page back through the rest."""
    args = params.query_args(("history_limit", "history_offset"))
    limit = params.integer_arg(args, "history_limit", HISTORY_LIMIT, 1, MAX_LIMIT)
    offset = params.integer_arg(args, "history_offset", 0, 0, MAX_OFFSET)
    return get_store().get_job(job_id, history=True, history_limit=limit, history_offset=offset)


@blueprint.post("/jobs/<job_id>/retry")
def retry_job(job_id):
    """A dead job goes back to pending with attempts 0: 200 and its record; 409 when it is not dead."""
    params.query_args(())
    return get_store().retry_dead(job_id, actor=actor())


@blueprint.post("/dlq/retry-all")
def retry_all_dead():
    """Every dead job goes back to pending with attempts 0."""
    params.query_args(())
    return {"retried": get_store().retry_all_dead(actor=actor())}


@blueprint.get("/workers")
def list_workers():
    """The live workers, with their current job and CPU/memory figures."""
    params.query_args(())
    return {"workers": get_store().live_workers()}


@blueprint.post("/workers/stop")
def stop_workers():
    """Ask every live worker to finish its job and exit, as `queuectl worker stop` does: 202."""
    params.query_args(())
    return {"stop_requested": get_store().request_stop(actor=actor())}, 202


@blueprint.get("/settings")
def get_settings():
    """Every setting: the flat object `queuectl config get --json` prints."""
    params.query_args(())
    return get_store().get_settings()


@blueprint.put("/settings")
def change_settings():
    """Change some settings (a JSON object of name to value), checked as `config set` checks them.

    All or nothing: one bad value and nothing changes (400 names each bad one under 'fields')."""
    params.query_args(())
    values = params.json_body()
    if not values:
        raise InvalidInput("give at least one setting, e.g. {\"max_retries\": 5}")
    errors = fields.settings_field_errors(values)
    if errors:
        return error_response(next(iter(errors.values())), 400, fields=errors)
    store = get_store()
    store.set_settings(values, actor=actor())
    return store.get_settings()


@blueprint.get("/throughput")
def throughput():
    """Runs finished per minute (succeeded and failed) over the last `minutes` minutes (default 60)."""
    args = params.query_args(("minutes",))
    minutes = params.integer_arg(args, "minutes", 60, 1, 1440)
    return {"minutes": get_store().throughput(minutes)}


@blueprint.get("/openapi.json")
def openapi_document():
    """The OpenAPI 3 description of this API."""
    params.query_args(())
    return openapi.document()
