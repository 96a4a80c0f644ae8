"""Tokens, sessions, throttling and roles through real gunicorn processes on free 127.0.0.1 ports."""

import http.cookiejar
import json
import os
import re
import signal
import subprocess
import urllib.parse
import urllib.request

import psutil
import pytest
from api_support import AUTH, GUNICORN, GUNICORN_CONF, READ_TOKEN, REPO, TOKEN, http_call, http_json, start_gunicorn
from helpers import wait_for

VIEWER = {"Authorization": f"Bearer {READ_TOKEN}"}
WRONG = {"Authorization": "Bearer " + "w" * 40}


class Browser:
    """An HTTP client with a cookie jar, as a browser would log in through the form."""

    def __init__(self, base):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def call(self, method, path, body=None, headers=None):
        """(status, headers, body text) of one request with the jar's cookies."""
        request = urllib.request.Request(self.base + path, data=body, method=method, headers=headers or {})
        try:
            with self.opener.open(request, timeout=15) as response:
                return response.status, response.headers, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read().decode()

    def log_in(self, token):
        """Post the login form with `token`; (status, headers, page) of the answer (after the redirect)."""
        page = self.call("GET", "/login")[2]
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        form = urllib.parse.urlencode({"token": token, "csrf_token": csrf, "next": "/"}).encode()
        return self.call("POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded"})

    def csrf(self):
        """The session's CSRF token, as the dashboard's pages carry it."""
        return re.search(r'<meta name="csrf-token" content="([^"]+)">', self.call("GET", "/")[2]).group(1)

    def session_cookie(self):
        return next(cookie.value for cookie in self.jar if cookie.name == "queuectl_session")


def start_refused(db_path, **env):
    """Run gunicorn with `env` over the current environment and expect it to refuse to start."""
    full = {key: value for key, value in os.environ.items() if not key.startswith("QUEUECTL_")}
    full.update(QUEUECTL_DB=str(db_path), QUEUECTL_API_BIND="127.0.0.1:0", **env)
    return subprocess.run([GUNICORN, "-c", GUNICORN_CONF, "queuectl_api:create_app()"], env=full, cwd=str(REPO),
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("env, words", [
    ({"QUEUECTL_API_TOKEN": "short-token-q7Zx"},
     ["QUEUECTL_API_TOKEN is too short (16 characters)", "export QUEUECTL_API_TOKEN=", "secrets.token_urlsafe(32)"]),
    ({"QUEUECTL_API_TOKEN": TOKEN, "QUEUECTL_API_READ_TOKEN": "short-token-q7Zx"},
     ["QUEUECTL_API_READ_TOKEN is too short (16 characters)", "export QUEUECTL_API_READ_TOKEN="]),
    ({"QUEUECTL_API_TOKEN": TOKEN, "QUEUECTL_API_READ_TOKEN": TOKEN},
     ["QUEUECTL_API_READ_TOKEN must differ from QUEUECTL_API_TOKEN"]),
    ({"QUEUECTL_API_TOKEN": TOKEN, "QUEUECTL_SESSION_SECRET": "short-token-q7Zx"},
     ["QUEUECTL_SESSION_SECRET is too short"]),
], ids=["short-token", "short-read-token", "same-tokens", "short-session-secret"])
def test_gunicorn_refuses_unsafe_tokens_and_says_how_to_make_one(db_path, env, words):
    result = start_refused(db_path, **env)
    assert result.returncode != 0
    for word in words:
        assert word in result.stderr
    assert "Traceback" not in result.stderr
    assert "short-token-q7Zx" not in result.stderr


def workers_of(master):
    return {child.pid for child in psutil.Process(master.pid).children()}


def test_every_gunicorn_worker_even_a_respawned_one_accepts_a_session_and_no_process_has_the_secret(processes,
                                                                                                   db_path):
    base = start_gunicorn(processes, db_path, extra_env={"QUEUECTL_API_WORKERS": "2"})
    master = processes.processes[-1]
    browser = Browser(base)
    assert browser.log_in(TOKEN)[0] == 200
    wait_for(lambda: len(workers_of(master)) == 2, timeout=30, message="two gunicorn workers")
    first = workers_of(master)
    # Kill every worker that existed at login: the master forks new ones, which must accept the session too.
    for pid in first:
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: len(workers_of(master) - first) == 2, timeout=30, message="two new gunicorn workers")
    for _ in range(6):  # several requests, spread over both new workers
        status, _, body = browser.call("GET", "/api/v1/stats")
        assert status == 200, body
    headers = {"X-CSRF-Token": browser.csrf(), "Content-Type": "application/json"}
    assert browser.call("POST", "/api/v1/jobs", b'{"command": "true", "id": "after-respawn"}', headers)[0] == 201
    for pid in {master.pid} | workers_of(master):  # the secret lives in memory, not in an environment a job could read
        assert b"QUEUECTL_SESSION_SECRET" not in open(f"/proc/{pid}/environ", "rb").read()


def test_two_servers_with_the_same_token_refuse_each_others_sessions_unless_they_share_a_session_secret(
        processes, db_path):
    one_worker = {"QUEUECTL_API_WORKERS": "1"}
    first, second = (start_gunicorn(processes, db_path, extra_env=one_worker) for _ in range(2))
    browser = Browser(first)
    browser.log_in(TOKEN)
    cookie = {"Cookie": f"queuectl_session={browser.session_cookie()}"}
    assert http_call("GET", f"{first}/api/v1/stats", headers=cookie)[0] == 200
    # Same token, another server (or the same one restarted): the session is not valid there.
    assert http_call("GET", f"{second}/api/v1/stats", headers=cookie)[0] == 401
    shared = {**one_worker, "QUEUECTL_SESSION_SECRET": "a-secret-set-by-the-operator-" + "s" * 20}
    third, fourth = (start_gunicorn(processes, db_path, extra_env=shared) for _ in range(2))
    browser = Browser(third)
    browser.log_in(TOKEN)
    cookie = {"Cookie": f"queuectl_session={browser.session_cookie()}"}
    assert http_call("GET", f"{fourth}/api/v1/stats", headers=cookie)[0] == 200


def test_gunicorn_throttles_wrong_tokens_with_at_most_limit_guesses_per_worker(processes, db_path):
    limit, workers = 3, 2
    base = start_gunicorn(processes, db_path, extra_env={"QUEUECTL_AUTH_FAILURE_LIMIT": str(limit),
                                                          "QUEUECTL_API_WORKERS": str(workers)})
    statuses = []
    for _ in range(limit * workers + 1):  # one more than every worker together allows: some worker is closed
        status, headers, raw = http_call("GET", f"{base}/api/v1/stats", headers=WRONG)
        statuses.append(status)
        if status == 429:
            assert 1 <= int(headers["Retry-After"]) <= 300
            assert "too many failed logins" in json.loads(raw)["error"]
    assert statuses.count(401) <= limit * workers and 429 in statuses, statuses
    assert set(statuses) <= {401, 429}


def test_gunicorn_throttles_the_login_form_then_lets_the_address_in_after_the_window(processes, db_path):
    base = start_gunicorn(processes, db_path, extra_env={"QUEUECTL_AUTH_FAILURE_LIMIT": "2",
                                                          "QUEUECTL_AUTH_FAILURE_WINDOW": "2",
                                                          "QUEUECTL_API_WORKERS": "1"})
    browser = Browser(base)
    for _ in range(2):
        assert browser.log_in("wrong-" + "w" * 40)[0] == 401
    status, headers, page = browser.log_in(TOKEN)
    assert status == 429 and 1 <= int(headers["Retry-After"]) <= 2
    assert "Too many failed logins from your address" in page
    wait_for(lambda: browser.log_in(TOKEN)[0] == 200, timeout=30, message="the login to be let in again")
    assert browser.call("GET", "/api/v1/stats")[0] == 200


def test_the_viewer_token_reads_through_gunicorn_and_is_refused_every_change(processes, db_path):
    base = start_gunicorn(processes, db_path, extra_env={"QUEUECTL_API_READ_TOKEN": READ_TOKEN})
    assert http_json("POST", f"{base}/api/v1/jobs", {"command": "true", "id": "by-operator"}, AUTH)[0] == 201
    assert http_json("GET", f"{base}/api/v1/jobs/by-operator", headers=VIEWER)[1]["id"] == "by-operator"
    assert http_json("GET", f"{base}/api/v1/stats", headers=VIEWER)[1]["jobs"]["pending"] == 1
    for method, path, body in [("POST", "/api/v1/jobs", {"command": "true"}), ("PUT", "/api/v1/settings",
                                                                              {"max_retries": 9}),
                               ("POST", "/api/v1/jobs/by-operator/cancel", None), ("POST", "/api/v1/pause", None),
                               ("POST", "/api/v1/workers/stop", None)]:
        status, answer = http_json(method, f"{base}{path}", body, VIEWER)
        assert status == 403 and "read-only" in answer["error"], (method, path, status, answer)
    stats = http_json("GET", f"{base}/api/v1/stats", headers=VIEWER)[1]
    assert stats["jobs"]["pending"] == 1 and stats["jobs"]["cancelled"] == 0 and not stats["paused"]
    assert http_json("GET", f"{base}/api/v1/settings", headers=AUTH)[1]["max_retries"] != 9
    browser = Browser(base)
    assert browser.log_in(READ_TOKEN)[0] == 200
    headers = {"X-CSRF-Token": browser.csrf(), "Content-Type": "application/json"}
    assert browser.call("POST", "/api/v1/jobs", b'{"command": "true"}', headers)[0] == 403
    assert browser.call("GET", "/api/v1/jobs")[0] == 200
