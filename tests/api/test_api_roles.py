"""The viewer token (QUEUECTL_API_READ_TOKEN): every read of /api/v1, a read-only dashboard, 403 on every change."""

import re

import pytest
from api_support import AUTH, READ_TOKEN, TOKEN, make_dead
from queuectl_api import auth, create_app
from queuectl_core.store import SqliteStore

VIEWER = {"Authorization": f"Bearer {READ_TOKEN}"}
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
# A body each state-changing route would accept from the operator (so a 403 is about the role, not the input).
BODIES = {"/api/v1/jobs": {"command": "true"}, "/api/v1/settings": {"max_retries": 7},
          "/api/v1/purge": {"states": ["dead"]},
          "/api/v1/schedules": {"name": "other", "every": "1h", "job": {"command": "true"}}}
# Elements through which a page changes something; a viewer's pages have none of them.
ACTIONS = ["id=\"retry\"", "id=\"cancel\"", "id=\"retry-all\"", "id=\"purge\"", "id=\"stop-workers\"",
           "id=\"pause-queue\"", "id=\"enqueue-form\"", "id=\"submit\"", "id=\"save\"", "enqueue.js"]


@pytest.fixture
def roles_app(db_path):
    """The app with both tokens, on a database holding the dead job `some-job`, the schedule `some-job` and one
    live worker."""
    from queuectl_core.schedules import check_schedule

    store = SqliteStore(str(db_path))
    make_dead(store, "some-job")
    store.add_schedule(check_schedule("some-job", every="1h", job={"command": "true"}))
    store.register_worker("w-1", "host", 1)
    store.close()
    return create_app({"QUEUECTL_DB": str(db_path), "QUEUECTL_API_TOKEN": TOKEN,
                       "QUEUECTL_API_READ_TOKEN": READ_TOKEN, "TESTING": True})


def every_request(app, methods):
    """(method, rule, url) for each of `methods` of every /api/v1 rule, path parameters naming some-job."""
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1"):
            for method in sorted(rule.methods & methods):
                yield method, rule.rule, re.sub(r"<[^>]+>", "some-job", rule.rule)


def snapshot(db_path):
    """Everything a state-changing route could change: jobs, settings, pause, the workers' stop requests."""
    store = SqliteStore(str(db_path))
    try:
        jobs, _ = store.search_jobs(limit=1000)
        workers = [(worker["id"], worker["stop_requested"]) for worker in store.live_workers()]
        return jobs, store.get_settings(), store.paused_since(), workers, store.list_schedules()
    finally:
        store.close()


def log_in(client, token):
    """Log `client` in through the form with `token`; return the session's CSRF token."""
    client.get("/login")
    with client.session_transaction() as session:
        csrf = session["csrf"]
    assert client.post("/login", data={"token": token, "csrf_token": csrf, "next": "/"}).status_code == 302
    with client.session_transaction() as session:
        return session["csrf"]


def test_every_get_route_of_the_api_answers_the_viewer_token_and_a_viewer_session(roles_app):
    session_client = roles_app.test_client()
    log_in(session_client, READ_TOKEN)
    checked = 0
    for _, rule, url in every_request(roles_app, {"GET"}):
        for client, headers in ((roles_app.test_client(), VIEWER), (session_client, {})):
            response = client.get(url, headers=headers)
            assert response.status_code == 200, (rule, response.status_code, response.get_data(as_text=True)[:200])
        checked += 1
    assert checked >= 8


def test_every_state_changing_api_route_answers_403_to_the_viewer_token_and_changes_nothing(roles_app, db_path):
    before = snapshot(db_path)
    client = roles_app.test_client()
    checked = 0
    for method, rule, url in every_request(roles_app, STATE_CHANGING):
        response = client.open(url, method=method, headers=VIEWER, json=BODIES.get(rule, {}))
        assert response.status_code == 403, (method, rule, response.status_code)
        assert "read-only" in response.get_json()["error"], (method, rule)
        assert "QUEUECTL_API_TOKEN" in response.get_json()["error"]
        checked += 1
    assert checked >= 10
    assert snapshot(db_path) == before


def test_a_viewer_session_is_refused_every_change_even_with_its_csrf_header(roles_app, db_path):
    client = roles_app.test_client()
    csrf = log_in(client, READ_TOKEN)
    with client.session_transaction() as session:
        assert session["role"] == "viewer"
    before = snapshot(db_path)
    for method, rule, url in every_request(roles_app, STATE_CHANGING):
        response = client.open(url, method=method, json=BODIES.get(rule, {}), headers={"X-CSRF-Token": csrf})
        assert response.status_code == 403, (method, rule, response.status_code)
        assert "read-only" in response.get_json()["error"], (method, rule)
    assert snapshot(db_path) == before


def test_the_operator_token_still_changes_state_beside_a_viewer_token(roles_app, db_path):
    client = roles_app.test_client()
    assert client.post("/api/v1/jobs/some-job/retry", headers=AUTH).status_code == 200
    csrf = log_in(client, TOKEN)
    with client.session_transaction() as session:
        assert session["role"] == "operator"
    assert client.put("/api/v1/settings", json={"max_retries": 7}, headers={"X-CSRF-Token": csrf}).status_code == 200
    assert snapshot(db_path)[1]["max_retries"] == 7


def dashboard_pages(app):
    return [re.sub(r"<[^>]+>", "some-job", rule.rule) for rule in app.url_map.iter_rules()
            if "GET" in rule.methods and not rule.rule.startswith(("/api/", "/static/", "/healthz", "/metrics",
                                                                   "/login"))]


def test_a_viewer_sessions_pages_carry_no_action_and_the_operators_do(roles_app):
    viewer, operator = roles_app.test_client(), roles_app.test_client()
    log_in(viewer, READ_TOKEN)
    log_in(operator, TOKEN)
    pages = dashboard_pages(roles_app)
    assert {"/", "/jobs", "/jobs/some-job", "/enqueue", "/settings"} <= set(pages)
    operator_actions = set()
    for url in pages:
        html = viewer.get(url).get_data(as_text=True)
        assert '<meta name="queuectl-role" content="viewer">' in html, url
        assert 'id="read-only"' in html, url
        for action in ACTIONS:
            assert action not in html, (url, action)
        assert 'href="/enqueue"' not in html, url
        # Forms that post to the server: only the logout form.
        posting = re.findall(r"<form\b[^>]*method=\"post\"[^>]*>", html, re.I)
        assert posting == ['<form method="post" action="/logout" class="logout">'], (url, posting)
        operator_html = operator.get(url).get_data(as_text=True)
        assert 'id="read-only"' not in operator_html
        operator_actions |= {action for action in ACTIONS if action in operator_html}
    assert operator_actions == set(ACTIONS)  # the check above looks for elements that do exist
    settings = viewer.get("/settings").get_data(as_text=True)
    assert '<fieldset class="plain" disabled>' in settings
    assert viewer.get("/enqueue").status_code == 403


def test_without_a_read_token_configured_the_viewer_token_is_just_a_wrong_token(db_path):
    client = create_app({"QUEUECTL_DB": str(db_path), "QUEUECTL_API_TOKEN": TOKEN}).test_client()
    assert client.get("/api/v1/stats", headers=VIEWER).status_code == 401
    client.get("/login")
    with client.session_transaction() as session:
        csrf = session["csrf"]
    assert client.post("/login", data={"token": READ_TOKEN, "csrf_token": csrf}).status_code == 401


def test_a_session_without_a_known_role_is_no_session(roles_app):
    client = roles_app.test_client()
    with client.session_transaction() as session:
        session["logged_in"] = True  # what sessions held before roles existed
        session["role"] = "admin"
    assert client.get("/api/v1/stats").status_code == 401
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("headers, actor", [(AUTH, "api:operator"), (VIEWER, "api:viewer")])
def test_each_request_knows_its_role_and_actor(roles_app, headers, actor):
    with roles_app.test_request_context("/api/v1/stats", headers=headers):
        auth.check_api_request()
        assert auth.current_actor() == actor
        assert auth.can_change() == (actor == "api:operator")
