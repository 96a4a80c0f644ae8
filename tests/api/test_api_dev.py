"""`make dev`'s launcher: a token file, gunicorn and workers together, and a graceful stop on Ctrl-C."""

import os
import signal
import socket
import stat
import sys

import psutil
from api_support import REPO, free_port, http_json
from helpers import wait_for
from queuectl_core.store import SqliteStore

DEV = str(REPO / "scripts" / "dev.py")


def test_dev_makes_a_token_serves_the_dashboard_with_workers_and_stops_gracefully(tmp_path, processes):
    bind = f"127.0.0.1:{free_port()}"
    launcher = processes.start([sys.executable, DEV, "--workers", "2", "--dir", str(tmp_path)],
                               env={"QUEUECTL_API_BIND": bind}, stdout=open(tmp_path / "out.txt", "w"))
    token_file = tmp_path / "api-token"
    wait_for(lambda: "Ctrl-C stops everything" in (tmp_path / "out.txt").read_text(), timeout=60,
             message="the launcher's banner")
    banner = (tmp_path / "out.txt").read_text()
    token = token_file.read_text().strip()
    assert f"http://{bind}" in banner and token in banner
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    auth = {"Authorization": f"Bearer {token}"}
    wait_for(lambda: len(http_json("GET", f"http://{bind}/api/v1/stats", headers=auth)[1]["workers"]) == 2,
             timeout=30, message="two live workers")
    status, _ = http_json("POST", f"http://{bind}/api/v1/jobs", {"command": "sleep 1", "id": "slow"}, auth)
    assert status == 201
    wait_for(lambda: http_json("GET", f"http://{bind}/api/v1/jobs/slow", headers=auth)[1]["state"] == "processing",
             timeout=30, message="the job to start")
    # Ctrl-C reaches the launcher's process group only; the running job still finishes.
    os.killpg(launcher.pid, signal.SIGINT)
    assert launcher.wait(timeout=60) == 0
    assert "make dev: stopped" in (tmp_path / "out.txt").read_text()
    store = SqliteStore(str(tmp_path / "queuectl.db"))
    assert store.get_job("slow")["state"] == "completed"
    assert store.live_workers() == []
    store.close()
    # The token is kept for the next start.
    assert token_file.read_text().strip() == token


def test_dev_refuses_an_address_in_use_with_a_clear_message(tmp_path, processes):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        bind = f"127.0.0.1:{busy.getsockname()[1]}"
        launcher = processes.start([sys.executable, DEV, "--dir", str(tmp_path)], env={"QUEUECTL_API_BIND": bind})
        assert launcher.wait(timeout=60) == 1
        assert "is in use" in processes.log(launcher)


def test_dev_children_stop_when_the_launcher_is_killed(tmp_path, processes):
    bind = f"127.0.0.1:{free_port()}"
    launcher = processes.start([sys.executable, DEV, "--workers", "1", "--dir", str(tmp_path)],
                               env={"QUEUECTL_API_BIND": bind}, stdout=open(tmp_path / "out.txt", "w"))
    wait_for(lambda: "Ctrl-C stops everything" in (tmp_path / "out.txt").read_text(), timeout=60,
             message="the launcher's banner")
    children = [child.pid for child in psutil.Process(launcher.pid).children()]
    assert len(children) == 2
    os.killpg(launcher.pid, signal.SIGKILL)
    launcher.wait(timeout=10)
    # PR_SET_PDEATHSIG hands gunicorn and the worker supervisor a SIGTERM: they stop by themselves.
    wait_for(lambda: not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
                             for pid in children), timeout=30, message="gunicorn and the workers to exit")
