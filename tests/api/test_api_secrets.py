"""The token never reaches a log: gunicorn's access and error logs at debug level, after right and wrong tokens,
logins and errors; and under `make dev` the workers (so their jobs) do not have it at all."""

import json
import signal
import sys
import urllib.parse

from api_support import REPO, TOKEN, free_port, http_call, start_gunicorn
from helpers import run_cli, wait_for


def test_gunicorn_logs_at_debug_level_never_show_the_token(processes, db_path, tmp_path):
    access_log = tmp_path / "access.log"
    base = start_gunicorn(processes, db_path, extra_env={"QUEUECTL_API_ACCESS_LOG": str(access_log),
                                                          "QUEUECTL_LOG_LEVEL": "debug"})
    auth = {"Authorization": f"Bearer {TOKEN}"}
    http_call("GET", f"{base}/api/v1/stats", headers=auth)
    http_call("POST", f"{base}/api/v1/jobs", {"command": "true", "id": "j1"}, headers=auth)
    http_call("POST", f"{base}/api/v1/jobs", b"{not json", headers=auth)
    http_call("GET", f"{base}/api/v1/stats", headers={"Authorization": f"Bearer {TOKEN}x"})  # wrong: logged?
    http_call("GET", f"{base}/api/v1/jobs/nope", headers=auth)
    # A dashboard login posts the token in a form body.
    status, headers, body = http_call("GET", f"{base}/login")
    cookie = headers["Set-Cookie"].split(";")[0]
    csrf = body.decode().split('name="csrf_token" value="')[1].split('"')[0]
    form = urllib.parse.urlencode({"token": TOKEN, "csrf_token": csrf, "next": "/"}).encode()
    answer = http_call("POST", f"{base}/login", form,
                       headers={"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"})
    assert answer[0] in (200, 302)  # accepted (urllib follows the redirect); a refusal is 400 or 401
    gunicorn = processes.processes[-1]
    gunicorn.send_signal(signal.SIGTERM)
    gunicorn.wait(timeout=30)

    logs = processes.log(gunicorn) + access_log.read_text()
    assert "/api/v1/stats" in logs and "/login" in logs  # the requests were logged
    assert TOKEN not in logs
    assert TOKEN[:12] not in logs  # not even a prefix


def test_under_make_dev_the_workers_and_their_jobs_never_have_the_token(tmp_path, processes):
    bind = f"127.0.0.1:{free_port()}"
    launcher = processes.start([sys.executable, str(REPO / "scripts" / "dev.py"), "--workers", "1", "--dir",
                                str(tmp_path)], env={"QUEUECTL_API_BIND": bind}, stdout=open(tmp_path / "out.txt", "w"))
    wait_for(lambda: "Ctrl-C stops everything" in (tmp_path / "out.txt").read_text(), timeout=60,
             message="the launcher's banner")
    token = (tmp_path / "api-token").read_text().strip()
    db = tmp_path / "queuectl.db"
    # A job that looks for the token in its own environment and in its worker's (same user: readable).
    probe = "tr '\\0' '\\n' < /proc/$PPID/environ | grep -c QUEUECTL_API_TOKEN; env | grep -c QUEUECTL_API_TOKEN; true"
    assert run_cli(db, "enqueue", json.dumps({"id": "probe", "command": probe})).returncode == 0
    wait_for(lambda: run_cli(db, "show", "probe", "--json").stdout.count('"completed"') >= 1, timeout=30,
             message="the probe job to run")
    shown = json.loads(run_cli(db, "show", "probe", "--json").stdout)
    assert shown["history"][-1]["output"].split() == ["0", "0"], shown["history"][-1]["output"]
    assert token not in shown["history"][-1]["output"]
    launcher.send_signal(signal.SIGINT)
    assert launcher.wait(timeout=60) == 0
    assert token not in (tmp_path / "access.log").read_text()
