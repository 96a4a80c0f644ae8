"""Sessions are signed with a random secret (never one derived from the token), and unsafe tokens stop the start."""

import hashlib
import hmac

import pytest
from api_support import READ_TOKEN, TOKEN
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import BadSignature
from queuectl_api import MissingToken, UnsafeConfiguration, create_app


def login_page_cookie(client):
    """The signed session cookie any anonymous visitor gets from GET /login."""
    assert client.get("/login").status_code == 200
    return client.get_cookie("queuectl_session").value


def opens_with_key(cookie, key):
    """True when `key` verifies the cookie's signature: what an attacker would test for each guessed token."""
    guesser = Flask("guesser")
    guesser.secret_key = key
    try:
        SecureCookieSessionInterface().get_signing_serializer(guesser).loads(cookie)
    except BadSignature:
        return False
    return True


def test_the_cookie_any_visitor_gets_cannot_be_used_to_test_guesses_of_the_token_offline(client):
    cookie = login_page_cookie(client)
    # Before issue 13 the key was HMAC(token, "queuectl dashboard session cookie"): the right guess verified the
    # cookie, so guesses could be tried offline at any speed. Now the right token itself tells nothing.
    derived = hmac.new(TOKEN.encode(), b"queuectl dashboard session cookie", hashlib.sha256).hexdigest()
    for key in (derived, TOKEN, hashlib.sha256(TOKEN.encode()).hexdigest()):
        assert not opens_with_key(cookie, key)
    assert opens_with_key(cookie, client.application.config["SECRET_KEY"])  # the check itself works


def test_a_session_secret_set_by_the_operator_is_shared_by_every_app_that_has_it(db_path, monkeypatch):
    monkeypatch.setenv("QUEUECTL_SESSION_SECRET", "operator-chosen-session-secret-" + "x" * 16)
    first = create_app({"QUEUECTL_DB": str(db_path), "QUEUECTL_API_TOKEN": TOKEN}).test_client()
    second = create_app({"QUEUECTL_DB": str(db_path), "QUEUECTL_API_TOKEN": TOKEN}).test_client()
    first.get("/login")
    with first.session_transaction() as session:
        csrf = session["csrf"]
    assert first.post("/login", data={"token": TOKEN, "csrf_token": csrf}).status_code == 302
    second.set_cookie("queuectl_session", first.get_cookie("queuectl_session").value)
    assert second.get("/api/v1/stats").status_code == 200  # e.g. a restarted server: nobody is logged out
    monkeypatch.setenv("QUEUECTL_SESSION_SECRET", "another-session-secret-" + "y" * 16)
    third = create_app({"QUEUECTL_DB": str(db_path), "QUEUECTL_API_TOKEN": TOKEN}).test_client()
    third.set_cookie("queuectl_session", first.get_cookie("queuectl_session").value)
    assert third.get("/api/v1/stats").status_code == 401


def test_a_session_ends_when_the_token_it_logged_in_with_is_changed_even_with_the_same_secret(db_path, monkeypatch):
    monkeypatch.setenv("QUEUECTL_SESSION_SECRET", "operator-chosen-session-secret-" + "x" * 16)
    before = create_app({"QUEUECTL_DB": str(db_path), "QUEUECTL_API_TOKEN": TOKEN,
                         "QUEUECTL_API_READ_TOKEN": READ_TOKEN}).test_client()
    cookies = {}
    for token in (TOKEN, READ_TOKEN):
        before.get("/login")
        with before.session_transaction() as session:
            csrf = session["csrf"]
        assert before.post("/login", data={"token": token, "csrf_token": csrf}).status_code == 302
        cookies[token] = before.get_cookie("queuectl_session").value
        assert token not in cookies[token]
    rotated = create_app({"QUEUECTL_DB": str(db_path), "QUEUECTL_API_TOKEN": "rotated-" + TOKEN,
                          "QUEUECTL_API_READ_TOKEN": READ_TOKEN}).test_client()
    rotated.set_cookie("queuectl_session", cookies[TOKEN])
    assert rotated.get("/api/v1/stats").status_code == 401  # a stolen operator session dies with the old token
    rotated.set_cookie("queuectl_session", cookies[READ_TOKEN])
    assert rotated.get("/api/v1/stats").status_code == 200  # the viewer token did not change
    without_viewer = create_app({"QUEUECTL_DB": str(db_path), "QUEUECTL_API_TOKEN": TOKEN}).test_client()
    without_viewer.set_cookie("queuectl_session", cookies[READ_TOKEN])
    assert without_viewer.get("/api/v1/stats").status_code == 401


def test_without_a_configured_secret_every_app_of_one_process_signs_alike_and_never_with_the_token(db_path,
                                                                                                  monkeypatch):
    monkeypatch.delenv("QUEUECTL_SESSION_SECRET", raising=False)
    first = create_app({"QUEUECTL_DB": str(db_path), "QUEUECTL_API_TOKEN": TOKEN})
    second = create_app({"QUEUECTL_DB": str(db_path), "QUEUECTL_API_TOKEN": "another-" + TOKEN})
    # One secret per process (gunicorn's master makes it before forking): not a function of the token.
    assert first.config["SECRET_KEY"] == second.config["SECRET_KEY"]
    assert len(first.config["SECRET_KEY"]) >= 64 and TOKEN not in first.config["SECRET_KEY"]


@pytest.mark.parametrize("length", [1, 16, 31])
def test_a_token_under_32_characters_is_refused_with_how_to_make_one(db_path, length):
    token = ("q7Zx" * 8)[:length]
    with pytest.raises(UnsafeConfiguration) as refused:
        create_app({"QUEUECTL_DB": str(db_path), "QUEUECTL_API_TOKEN": token})
    message = str(refused.value)
    assert f"too short ({length} characters)" in message and "under 32 characters" in message
    assert "secrets.token_urlsafe(32)" in message and "export QUEUECTL_API_TOKEN=" in message
    if length > 3:  # the message, which reaches logs, never quotes the token
        assert token not in message


def test_a_token_of_32_characters_is_accepted(db_path):
    token = "0123456789abcdef" * 2
    client = create_app({"QUEUECTL_DB": str(db_path), "QUEUECTL_API_TOKEN": f"  {token}\n"}).test_client()
    assert client.get("/api/v1/stats", headers={"Authorization": f"Bearer {token}"}).status_code == 200


@pytest.mark.parametrize("read_token, words", [
    ("r" * 31, ["QUEUECTL_API_READ_TOKEN is too short (31 characters)", "export QUEUECTL_API_READ_TOKEN="]),
    (TOKEN, ["QUEUECTL_API_READ_TOKEN must differ from QUEUECTL_API_TOKEN", "secrets.token_urlsafe(32)"]),
], ids=["short", "same-as-operator"])
def test_an_unsafe_viewer_token_is_refused(db_path, read_token, words):
    with pytest.raises(UnsafeConfiguration) as refused:
        create_app({"QUEUECTL_DB": str(db_path), "QUEUECTL_API_TOKEN": TOKEN, "QUEUECTL_API_READ_TOKEN": read_token})
    for word in words:
        assert word in str(refused.value)


def test_a_short_session_secret_is_refused(db_path, monkeypatch):
    monkeypatch.setenv("QUEUECTL_SESSION_SECRET", "short")
    with pytest.raises(UnsafeConfiguration, match="QUEUECTL_SESSION_SECRET is too short"):
        create_app({"QUEUECTL_DB": str(db_path), "QUEUECTL_API_TOKEN": TOKEN})


@pytest.mark.parametrize("name, value", [("QUEUECTL_AUTH_FAILURE_LIMIT", "0"), ("QUEUECTL_AUTH_FAILURE_WINDOW", "ten")])
def test_a_bad_throttle_setting_is_refused(db_path, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(UnsafeConfiguration, match=f"{name} must be a whole number of at least 1"):
        create_app({"QUEUECTL_DB": str(db_path), "QUEUECTL_API_TOKEN": TOKEN})


def test_a_missing_token_is_still_its_own_error(db_path, monkeypatch):
    monkeypatch.delenv("QUEUECTL_API_TOKEN", raising=False)
    with pytest.raises(MissingToken, match="QUEUECTL_API_TOKEN is not set"):
        create_app({"QUEUECTL_DB": str(db_path), "QUEUECTL_API_READ_TOKEN": READ_TOKEN})
