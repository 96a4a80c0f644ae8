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
def test_every_api_route_answers_401_without_the_right_token(guessing_app, headers):
    app, client = guessing_app, guessing_app.test_client()
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


def test_a_session_signed_with_another_secret_is_not_accepted(db_path, logged_in):
    client, _ = logged_in
    other = create_app({"QUEUECTL_DB": str(db_path), "QUEUECTL_API_TOKEN": TOKEN, "SECRET_KEY": "s" * 64})
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


# ---- the whole url_map: nothing new slips in without a check ---------------------------------------------------

# Routes open to anyone, by (method, rule): health and metrics (counts only), the login form and logout (CSRF-checked),
# static assets. Any other rule must answer 401 (API) or send the visitor to the login page (dashboard).
PUBLIC = {("GET", "/healthz"), ("GET", "/metrics"), ("GET", "/login"), ("POST", "/login"), ("POST", "/logout"),
          ("GET", "/static/<path:filename>")}
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}


def every_request(app):
    """(method, rule, url) for every method of every rule of the app, path parameters filled in."""
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, rule.rule, re.sub(r"<[^>]+>", "some-job", rule.rule)


def test_every_route_is_public_by_name_or_closed_without_credentials(app, client):
    for method, rule, url in every_request(app):
        if (method, rule) in PUBLIC:
            continue
        response = client.open(url, method=method, json={"command": "true"})
        if rule.startswith("/api/"):
            assert response.status_code == 401, (method, url, response.status_code)
        else:
            assert response.status_code == 302, (method, url, response.status_code)
            assert response.headers["Location"].startswith("/login"), (method, url)


def test_the_public_routes_show_counts_but_never_a_command_an_id_or_output(app, client):
    from api_support import add_job

    with app.app_context():
        from queuectl_api.storage import get_store

        add_job(get_store(), "echo secret-command-marker", id="secret-id-marker")
    for url in ("/healthz", "/metrics", "/login"):
        body = client.get(url).get_data(as_text=True)
        assert "secret-command-marker" not in body and "secret-id-marker" not in body, url


def test_every_state_changing_api_route_refuses_a_session_without_its_csrf_header(app, logged_in):
    client, csrf = logged_in
    checked = 0
    for method, rule, url in every_request(app):
        if rule.startswith("/api/") and method in STATE_CHANGING:
            refused = client.open(url, method=method, json={"command": "true"})
            assert refused.status_code == 403, (method, url, refused.status_code)
            forged = client.open(url, method=method, json={"command": "true"}, headers={"X-CSRF-Token": "forged"})
            assert forged.status_code == 403, (method, url, forged.status_code)
            checked += 1
    assert checked >= 5


def test_every_post_form_of_every_dashboard_page_carries_the_session_csrf_token(app, logged_in):
    client, csrf = logged_in
    pages = [url for method, rule, url in every_request(app)
             if method == "GET" and not rule.startswith(("/api/", "/static/", "/healthz", "/metrics"))]
    post_forms = 0
    for url in pages:
        html = client.get(url).get_data(as_text=True)
        for form in re.findall(r"<form\b[^>]*>.*?</form>", html, re.S | re.I):
            opening = form[: form.index(">") + 1].lower()
            if 'method="post"' in opening:
                post_forms += 1
                assert f'name="csrf_token" value="{csrf}"' in form, (url, opening)
            else:
                # Other forms never submit to the server themselves: the page's script sends them through the
                # API with the session's X-CSRF-Token header (or they are dialogs).
                assert "action=" not in opening, (url, opening)
    assert post_forms >= len(pages)  # at least the logout form on every page


def test_the_dashboard_scripts_reach_the_server_only_through_the_wrapper_that_sends_the_csrf_header():
    from pathlib import Path

    import queuectl_api

    static = Path(queuectl_api.__file__).parent / "static"
    wrapper = (static / "api.js").read_text()
    assert '"X-CSRF-Token": csrfToken' in wrapper
    for script in static.glob("*.js"):
        text = script.read_text()
        if script.name != "api.js":
            assert "fetch(" not in text and "XMLHttpRequest" not in text and ".submit(" not in text, script.name
