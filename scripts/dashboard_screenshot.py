"""Take the README's screenshots of the dashboard: docs/dashboard.png (overview), dashboard-jobs.png, dashboard-job.png.

Seeds a temporary queue with an hour of history, serves it with real gunicorn and real workers, and
photographs it in Debian's headless Chromium:  .venv/bin/python scripts/dashboard_screenshot.py
"""

import math
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import expect, sync_playwright
from queuectl_core.lifecycle import COMPLETED, FAILED, Outcome
from queuectl_core.store import SqliteStore
from queuectl_core.timeutil import now_ms
from queuectl_core.validation import check_job

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TOKEN = "screenshot-token-not-secret-0123456789"
COMMANDS = [
    "python3 scripts/resize_images.py --bucket uploads/2026-11 --width 1280",
    "pg_dump --format=custom shop > /backups/shop-$(date +%F).dump",
    "curl -fsS https://example.internal/hooks/nightly-report",
    "./bin/send-invoices --batch 42",
    "rsync -a /srv/media/ backup:/srv/media/",
    "make -C /opt/site build",
]


def seed_history(store, rng):
    """An hour of finished runs (a rhythm, a few failures: dead jobs), then more dead jobs and waiting ones."""
    now = now_ms()
    number = 0
    for minute in range(60, 0, -1):
        rate = int(6 + 5 * math.sin(minute / 9) + rng.randint(0, 4))
        for _ in range(rate):
            number += 1
            start = now - minute * 60_000 + rng.randint(0, 50_000)
            job = {"command": rng.choice(COMMANDS), "id": f"run-{number:05d}", "max_retries": 0}
            store.enqueue(check_job(job), now=start)
            claim = store.claim_next(f"vm-{4100 + number % 3}-a1b2", 30, now=start)
            assert claim.id == job["id"]
            failed = rng.random() < 0.06
            outcome = Outcome(FAILED, 1, "exit code 1") if failed else Outcome(COMPLETED, 0, None)
            end = start + rng.randint(200, 9000)
            output = "Traceback (most recent call last): ...\nConnectionError\n" if failed else "done\n"
            store.finish_run(claim, outcome, output, now=end)
    for index in range(3):
        store.enqueue(check_job({"command": "./bin/sync-crm --full", "id": f"sync-crm-{index}", "max_retries": 0}),
                      now=now - 5000)
        claim = store.claim_next("vm-4101-a1b2", 30, now=now - 5000)
        assert claim.id == f"sync-crm-{index}"
        outcome = Outcome(FAILED, 2, "exit code 2")
        store.finish_run(claim, outcome, "error: CRM API answered 503\n",
                         now=now - 3000)
    for index in range(14):
        store.enqueue(check_job({"command": rng.choice(COMMANDS), "id": f"later-{index:02d}", "delay": 600}))


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError("the server did not come up")


def main():
    """Seed, serve, photograph, stop."""
    rng = random.Random(7)
    directory = Path(tempfile.mkdtemp(prefix="queuectl-screenshot-"))
    db = directory / "queue.db"
    store = SqliteStore(str(db))
    seed_history(store, rng)
    for index, seconds in enumerate((40, 55, 70, 85, 100)):
        store.enqueue(check_job({"command": f"python3 train.py --epochs {seconds}; sleep {seconds}",
                                 "id": f"train-model-{index}", "priority": 5}))
    store.close()
    port = free_port()
    env = {**os.environ, "QUEUECTL_DB": str(db), "QUEUECTL_API_TOKEN": TOKEN,
           "QUEUECTL_API_BIND": f"127.0.0.1:{port}", "QUEUECTL_API_ACCESS_LOG": "/dev/null"}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "start_new_session": True, "env": env}
    processes = [
        subprocess.Popen([str(BIN / "gunicorn"), "-c", str(REPO / "config/gunicorn.conf.py"),
                          "queuectl_api:create_app()"], **quiet),
        subprocess.Popen([str(BIN / "queuectl-worker"), "--count", "2", "--concurrency", "4"], **quiet),
    ]
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: urllib.request.urlopen(f"{base}/healthz", timeout=2).status == 200)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu",
                                                           "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1360, "height": 940}, device_scale_factor=1)
            page.goto(f"{base}/login")
            page.fill("#token", TOKEN)
            page.click("button[type=submit]")
            expect(page.locator("#worker-count")).to_have_text("2 live", timeout=20_000)
            page.wait_for_timeout(4500)  # two heartbeats: CPU and memory figures are in
            (REPO / "docs").mkdir(exist_ok=True)
            page.screenshot(path=str(REPO / "docs" / "dashboard.png"), full_page=True)
            page.goto(f"{base}/jobs?state=dead&limit=25")
            expect(page.locator("#range")).to_have_text(re.compile("of"), timeout=20_000)
            page.screenshot(path=str(REPO / "docs" / "dashboard-jobs.png"), full_page=True)
            page.goto(f"{base}/jobs/sync-crm-0")
            expect(page.locator("#job-state")).to_have_text("dead", timeout=20_000)
            page.locator("#history summary").first.click()
            page.screenshot(path=str(REPO / "docs" / "dashboard-job.png"), full_page=True)
            browser.close()
    finally:
        for process in processes:
            for _ in range(2):  # the workers' second signal kills the demo jobs at once
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
                    time.sleep(0.3)
            process.wait(timeout=30)
    print("wrote docs/dashboard.png, docs/dashboard-jobs.png and docs/dashboard-job.png")


if __name__ == "__main__":
    main()
