"""Failed logins are throttled per client address: the login form and wrong bearer tokens alike (429, Retry-After)."""

import pytest
from api_support import AUTH, TOKEN
from helpers import wait_for
from queuectl_api import create_app, throttle

LIMIT = 3
WRONG = {"Authorization": "Bearer " + "w" * 40}
ATTACKER = {"REMOTE_ADDR": "198.51.100.7"}
SOMEONE_ELSE = {"REMOTE_ADDR": "203.0.113.9"}


@pytest.fixture
def strict_app(db_path):
    """The app with a small limit: LIMIT failures per address in 60 s."""
    return create_app({"QUEUECTL_DB": str(db_path), "QUEUECTL_API_TOKEN": TOKEN, "TESTING": True,
                       "QUEUECTL_AUTH_FAILURE_LIMIT": LIMIT, "QUEUECTL_AUTH_FAILURE_WINDOW": 60})


def form_login(client, token, environ=None):
    """Post the login form (with the session's CSRF token) from `environ`'s address; the response."""
    client.get("/login", environ_base=environ)
    with client.session_transaction() as session:
        csrf = session["csrf"]
    return client.post("/login", data={"token": token, "csrf_token": csrf, "next": "/"}, environ_base=environ)


def assert_throttled_json(response):
    assert response.status_code == 429
    assert "too many failed logins" in response.get_json()["error"]
    assert 1 <= int(response.headers["Retry-After"]) <= 60


def test_wrong_bearer_tokens_from_one_address_get_429_once_the_limit_is_reached(strict_app):
    client = strict_app.test_client()
    for _ in range(LIMIT):
        assert client.get("/api/v1/stats", headers=WRONG, environ_base=ATTACKER).status_code == 401
    assert_throttled_json(client.get("/api/v1/stats", headers=WRONG, environ_base=ATTACKER))
    # Closed means closed: even the right token is not looked at, so guessing learns nothing more.
    assert_throttled_json(client.post("/api/v1/jobs", json={"command": "true"}, headers=AUTH, environ_base=ATTACKER))
    assert client.get("/api/v1/jobs", headers=AUTH).get_json()["jobs"] == []
    # Other addresses are not affected.
    assert client.get("/api/v1/stats", headers=AUTH, environ_base=SOMEONE_ELSE).status_code == 200


def test_the_login_form_is_throttled_and_shares_the_count_with_the_api(strict_app):
    client = strict_app.test_client()
    assert client.get("/api/v1/stats", headers=WRONG, environ_base=ATTACKER).status_code == 401
    for _ in range(LIMIT - 1):
        assert form_login(client, "guess-" + "g" * 30, ATTACKER).status_code == 401
    refused = form_login(client, TOKEN, ATTACKER)  # the right token, too late
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "Too many failed logins from your address" in refused.get_data(as_text=True)
    assert refused.content_type.startswith("text/html")
    assert client.get("/", environ_base=ATTACKER).status_code == 302  # no session was started
    assert_throttled_json(client.get("/api/v1/stats", headers=AUTH, environ_base=ATTACKER))
    assert form_login(client, TOKEN, SOMEONE_ELSE).status_code == 302


def test_requests_without_credentials_and_valid_sessions_are_never_counted_or_refused(strict_app):
    client = strict_app.test_client()
    assert form_login(client, TOKEN, ATTACKER).status_code == 302  # a session from that address, before the guesses
    anonymous = strict_app.test_client()
    for _ in range(5 * LIMIT):
        assert anonymous.get("/api/v1/stats", environ_base=ATTACKER).status_code == 401  # no token: not a guess
    assert anonymous.get("/api/v1/stats", headers=AUTH, environ_base=ATTACKER).status_code == 200
    for _ in range(LIMIT):
        anonymous.get("/api/v1/stats", headers=WRONG, environ_base=ATTACKER)
    assert anonymous.get("/api/v1/stats", headers=AUTH, environ_base=ATTACKER).status_code == 429
    # The signed session cookie cannot be guessed: the dashboard of a logged-in user goes on working.
    assert client.get("/api/v1/stats", environ_base=ATTACKER).status_code == 200


def test_an_address_may_try_again_once_its_failures_leave_the_window(db_path):
    app = create_app({"QUEUECTL_DB": str(db_path), "QUEUECTL_API_TOKEN": TOKEN, "TESTING": True,
                      "QUEUECTL_AUTH_FAILURE_LIMIT": 2, "QUEUECTL_AUTH_FAILURE_WINDOW": 1})
    client = app.test_client()
    for _ in range(2):
        client.get("/api/v1/stats", headers=WRONG)
    assert client.get("/api/v1/stats", headers=AUTH).status_code == 429
    wait_for(lambda: client.get("/api/v1/stats", headers=AUTH).status_code == 200, timeout=10,
             message="the failures to age out")


def test_the_failure_log_is_a_sliding_window_with_bounded_memory(monkeypatch):
    now = [0.0]
    log = throttle.FailureLog(limit=3, window=10, clock=lambda: now[0])
    for moment in (0.0, 4.0, 5.0):
        now[0] = moment
        assert log.retry_after("a") == 0
        log.record("a")
    now[0] = 6.0
    assert log.retry_after("a") == 4  # until the failure at 0 is 10 s old
    now[0] = 10.0
    assert log.retry_after("a") == 0  # it left the window: one more try
    log.record("a")
    assert log.retry_after("a") == 4  # the one at 4 is the oldest of the last three now
    monkeypatch.setattr(throttle, "MAX_ADDRESSES", 5)
    for index in range(50):
        log.record(f"10.0.0.{index}")
    assert len(log._failures) == 5 and "10.0.0.49" in log._failures
