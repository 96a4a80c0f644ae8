"""Every /api/v1 route needs the token (or a dashboard session with CSRF); the dashboard needs a login."""

import re

import pytest
from api_support import AUTH, TOKEN
from queuectl_api import MissingToken, create_app


def api_requests(app):
    """(method, url) for every method of every /api/v1 rule, with path parameters filled in."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1"):
            url = re.sub(r"<[^>]+>", "some-job", rule.rule)
            found += [(method, url) for method in sorted(rule.methods)]
    return found


def test_the_api_has_the_contract_routes(app):
    urls = {(method, url) for method, url in api_requests(app)}
    for expected in [("GET", "/api/v1/stats"), ("GET", "/api/v1/jobs"), ("POST", "/api/v1/jobs"),
                     ("GET", "/api/v1/jobs/some-job"), ("POST", "/api/v1/jobs/some-job/retry"),
                     ("POST", "/api/v1/workers/stop"), ("GET", "/api/v1/openapi.json")]:
        assert expected in urls


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer wrong-token"},
    {"Authorization": f"Bearer {TOKEN}x"},
    {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": "Bearer"},
    {"Authorization": f"Token {TOKEN}"},
], ids=["no-token", "wrong-token", "token-plus-one", "basic-scheme", "empty-bearer", "other-scheme"])
def test_every_api_route_answers_401_without_the_right_token(app, client, headers):
    for method, url in api_requests(app):
        response = client.open(url, method=method, headers=headers, json={"command": "true"})
        assert response.status_code == 401, (method, url)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        if method != "HEAD":
            assert "token" in response.get_json()["error"], (method, url)


def test_a_wrong_token_is_refused_even_with_a_dashboard_session(logged_in):
    client, _ = logged_in
    assert client.get("/api/v1/stats").status_code == 200
    assert client.get("/api/v1/stats", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_the_bearer_scheme_is_case_insensitive_and_the_token_may_have_spaces_around_it(client):
    response = client.get("/api/v1/stats", headers={"Authorization": f"bearer   {TOKEN} "})
    assert response.status_code == 200


def test_a_session_may_read_but_changes_state_only_with_its_csrf_header(logged_in):
    client, csrf = logged_in
    assert client.get("/api/v1/jobs").status_code == 200
    refused = client.post("/api/v1/jobs", json={"command": "true"})
    assert refused.status_code == 403
    assert "CSRF" in refused.get_json()["error"]
    wrong = client.post("/api/v1/jobs", json={"command": "true"}, headers={"X-CSRF-Token": csrf + "x"})
    assert wrong.status_code == 403
    accepted = client.post("/api/v1/jobs", json={"command": "true"}, headers={"X-CSRF-Token": csrf})
    assert accepted.status_code == 201


def test_login_with_the_token_sets_a_strict_httponly_session_cookie(client):
    page = client.get("/login")
    assert page.status_code == 200
    assert b'name="csrf_token"' in page.data
    with client.session_transaction() as session:
        csrf = session["csrf"]
    response = client.post("/login", data={"token": TOKEN, "csrf_token": csrf, "next": "/jobs?state=dead"})
    assert response.status_code == 302
    assert response.headers["Location"] == "/jobs?state=dead"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert TOKEN not in cookie
    assert client.get("/").status_code == 200
    with client.session_transaction() as session:
        assert session["csrf"] != csrf  # a fresh CSRF token once logged in


def test_login_with_a_wrong_token_or_a_stale_form_is_refused(client):
    client.get("/login")
    with client.session_transaction() as session:
        csrf = session["csrf"]
    wrong = client.post("/login", data={"token": "guess", "csrf_token": csrf})
    assert wrong.status_code == 401
    assert b"Wrong token" in wrong.data
    stale = client.post("/login", data={"token": TOKEN, "csrf_token": "forged"})
    assert stale.status_code == 400
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\t/evil.example", "\\\\evil.example",
                                    "javascript:alert(1)", "/\\evil.example"])
def test_login_never_redirects_to_another_site(client, target):
    client.get("/login")
    with client.session_transaction() as session:
        csrf = session["csrf"]
    response = client.post("/login", data={"token": TOKEN, "csrf_token": csrf, "next": target})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_logout_needs_the_csrf_token_and_ends_the_session(logged_in):
    client, csrf = logged_in
    client.post("/logout", data={})
    assert client.get("/").status_code == 200  # a forged logout (no CSRF token) does nothing
    response = client.post("/logout", data={"csrf_token": csrf})
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    assert client.get("/").status_code == 302
    assert client.get("/api/v1/stats").status_code == 401


@pytest.mark.parametrize("page", ["/", "/jobs", "/jobs/some-job", "/enqueue", "/settings"])
def test_every_dashboard_page_sends_a_visitor_without_a_session_to_the_login_page(client, page):
    response = client.get(page)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_a_session_signed_with_another_token_is_not_accepted(db_path, logged_in):
    client, _ = logged_in
    other = create_app({"QUEUECTL_DB": str(db_path), "QUEUECTL_API_TOKEN": "another-token-value-123456"})
    cookie = client.get_cookie("queuectl_session")
    other_client = other.test_client()
    other_client.set_cookie("queuectl_session", cookie.value)
    assert other_client.get("/api/v1/stats").status_code == 401
    assert other_client.get("/").status_code == 302


@pytest.mark.parametrize("token", ["", "   ", None])
def test_the_app_refuses_to_start_without_a_token(db_path, monkeypatch, token):
    monkeypatch.delenv("QUEUECTL_API_TOKEN", raising=False)
    with pytest.raises(MissingToken, match="QUEUECTL_API_TOKEN"):
        create_app({"QUEUECTL_DB": str(db_path), "QUEUECTL_API_TOKEN": token})


def test_the_app_reads_the_token_and_database_from_the_environment(db_path, monkeypatch):
    monkeypatch.setenv("QUEUECTL_API_TOKEN", TOKEN)
    monkeypatch.setenv("QUEUECTL_DB", str(db_path))
    client = create_app().test_client()
    assert client.get("/api/v1/stats", headers=AUTH).status_code == 200
    assert db_path.exists()
