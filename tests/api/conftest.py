"""Fixtures of the API tests: an app on a fresh SQLite file, its test client, a logged-in client, real gunicorn."""

import pytest
from api_support import TOKEN, start_gunicorn
from queuectl_api import create_app


@pytest.fixture
def app(db_path):
    """The Flask app on a fresh database file, with a known token."""
    return create_app({"QUEUECTL_DB": str(db_path), "QUEUECTL_API_TOKEN": TOKEN, "TESTING": True})


@pytest.fixture
def guessing_app(db_path):
    """The app with a failed-login limit no test reaches: for tests that send many wrong tokens on purpose
    (test_api_throttle.py tests the limit itself)."""
    return create_app({"QUEUECTL_DB": str(db_path), "QUEUECTL_API_TOKEN": TOKEN, "TESTING": True,
                       "QUEUECTL_AUTH_FAILURE_LIMIT": 10**9})


@pytest.fixture
def client(app):
    """A Flask test client (no credentials unless a test sends them)."""
    return app.test_client()


@pytest.fixture
def logged_in(client):
    """A test client with a dashboard session; returns (client, csrf token)."""
    client.get("/login")
    with client.session_transaction() as session:
        csrf = session["csrf"]
    response = client.post("/login", data={"token": TOKEN, "csrf_token": csrf, "next": "/"})
    assert response.status_code == 302
    with client.session_transaction() as session:
        return client, session["csrf"]


@pytest.fixture
def server(processes, db_path):
    """Base URL of a real gunicorn serving the app on `db_path`."""
    return start_gunicorn(processes, db_path)


@pytest.fixture
def db_path(sqlite_path):
    """The API and dashboard tests run on SQLite; test_api_postgres.py covers PostgreSQL."""
    return sqlite_path
