"""The OpenAPI document matches the routes, and schemathesis finds no 500 and no answer that breaks it."""

import re

import pytest
import schemathesis
from api_support import AUTH
from helpers import busy_worker
from hypothesis import HealthCheck, given, settings
from queuectl_api import openapi
from queuectl_core.store import open_store
from schemathesis.config import SchemathesisConfig
from schemathesis.generation.modes import GenerationMode

EXAMPLES = 25  # per operation and mode: enough to hit every status, quick enough for `make test`


def test_every_api_route_is_in_the_document_with_its_methods(app):
    paths = openapi.document()["paths"]
    routes = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = re.sub(r"<([^>]+)>", r"{\1}", rule.rule[len("/api/v1"):])
            routes.setdefault(path, set()).update({method.lower() for method in rule.methods} - {"head", "options"})
    assert {path: set(operations) for path, operations in paths.items()} == routes


def test_the_served_document_is_openapi_3_with_bearer_auth(client):
    document = client.get("/api/v1/openapi.json", headers=AUTH).get_json()
    assert document["openapi"] == "3.1.0"
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer",
        "description": "the value of QUEUECTL_API_TOKEN, or of the read-only QUEUECTL_API_READ_TOKEN"}


def test_every_operation_documents_429_and_every_change_403():
    for path, item in openapi.document()["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            assert "Retry-After" in responses["429"]["headers"], (method, path)
            if method in ("post", "put", "patch", "delete"):
                assert "viewer" in responses["403"]["description"], (method, path)


# A body over the size limit is refused with 413, which schemathesis does not expect by default.
CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": [400, 401, 403, 404, 405, 409, 413, 422]}}})
INTEGER_KEYS = {"max_retries", "priority", "limit"}
INTEGER_LIST_KEYS = {"retry_on", "no_retry_on"}  # lists of exit codes


def exact_integer(key, value):
    """JSON Schema calls 5.0 an integer, the contract does not (a float where an integer belongs is refused):
    write generated integers as integers."""
    if key in INTEGER_KEYS and isinstance(value, float) and value.is_integer():
        return int(value)
    if key in INTEGER_LIST_KEYS and isinstance(value, list):
        return [int(item) if isinstance(item, float) and item.is_integer() else item for item in value]
    return value


def exact_body(body):
    """exact_integer over a job object and the job objects inside it (hooks, a schedule's job)."""
    fixed = {key: exact_integer(key, value) for key, value in body.items()}
    for key in ("on_success", "on_dead", "job"):
        if isinstance(fixed.get(key), dict):
            fixed[key] = exact_body(fixed[key])
    return fixed


def valid_cron_and_zone(body):
    """JSON Schema can say what a cron expression, an interval and a zone name look like, not which ones exist or
    are long enough (minute 61, the 30th of February, "0s", Mars/Olympus): a generated positive case gets a real one
    of each."""
    if "cron" in body:
        body["cron"] = "*/5 * * * *"
    if "every" in body:
        body["every"] = "5m"
    if "timezone" in body:
        body["timezone"] = "Europe/Berlin"


# Negative cases need something to break: operations without parameters or a body have none.
CASES = [
    (method.upper(), path, mode)
    for path, item in openapi.document()["paths"].items()
    for method, operation in item.items()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode == GenerationMode.POSITIVE or "parameters" in operation or "requestBody" in operation
]


# schemathesis's own pytest plugin (from_fixture) does not work with this pytest, so each operation's
# strategy is driven here with hypothesis directly; the checks are schemathesis's defaults.
@pytest.mark.parametrize("method, path, mode", CASES)
def test_schemathesis_finds_no_server_error_and_no_schema_violation(app, method, path, mode):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, headers=AUTH, config=CONFIG)
    operation = schema[path][method]

    statuses = []

    # The token is a fixed header of every case, so negative cases never "remove" it only to have it added back.
    @given(case=operation.as_strategy(generation_mode=mode, headers=AUTH))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None,
              derandomize=True)  # the same cases every run: CI never meets a case a developer did not
    def check(case):
        if isinstance(case.body, dict):
            case.body = exact_body(case.body)
            if mode == GenerationMode.POSITIVE and path == "/schedules":
                valid_cron_and_zone(case.body)
        elif isinstance(case.body, list):  # POST /jobs/batch: an array of job objects
            case.body = [exact_body(job) if isinstance(job, dict) else job for job in case.body]
        statuses.append(case.call_and_validate().status_code)

    check()
    # The token really went with the requests: valid ones succeeded, invalid ones were refused for what they are.
    assert any(status != 401 for status in statuses), statuses
    if mode == GenerationMode.POSITIVE and "{" not in path:  # random ids name no job (or schedule): 404
        assert any(200 <= status < 300 for status in statuses), statuses


WITHOUT_TOKEN = {"no-token": {}, "wrong-token": {"Authorization": "Bearer not-the-token"},
                 "token-as-basic": {"Authorization": f"Basic {AUTH['Authorization'].split()[1]}"}}


# The same fuzz without the right token: whatever the path, parameters, body or method, the answer is 401 (never a
# 500, never a 2xx or a 4xx that has read the request: no way in and nothing learnt without the token).
@pytest.mark.parametrize("method, path, mode", CASES)
@pytest.mark.parametrize("credentials", sorted(WITHOUT_TOKEN))
def test_schemathesis_without_the_right_token_gets_only_401(guessing_app, method, path, mode, credentials):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", guessing_app, headers=AUTH, config=CONFIG)
    operation = schema[path][method]
    headers = WITHOUT_TOKEN[credentials]
    statuses = []

    @given(case=operation.as_strategy(generation_mode=mode, headers=headers))
    @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None,
              derandomize=True)
    def check(case):
        case.headers = {key: value for key, value in (case.headers or {}).items() if key.lower() != "authorization"}
        case.headers.update(headers)
        response = case.call()
        statuses.append(response.status_code)
        assert response.status_code == 401, (case.method, case.formatted_path, response.status_code, response.text)
        assert response.json()["error"]

    check()
    assert statuses


# The fuzz runs on an empty queue, whose lists of workers are empty: their records are checked here.
@pytest.mark.parametrize("path", ["/workers", "/stats"])
def test_workers_with_slots_and_running_jobs_answer_as_the_document_says(app, db_path, path):
    store = open_store(str(db_path))
    busy_worker(store, "w4", 4, [30, 10, 2])
    store.register_worker("w1", "host", 7)
    store.close()
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, headers=AUTH, config=CONFIG)
    response = schema[path]["GET"].Case(headers=AUTH).call_and_validate()
    assert sorted(len(worker["jobs"]) for worker in response.json()["workers"]) == [0, 3]
