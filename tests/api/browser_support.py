"""Fixtures and helpers of the dashboard's browser tests (test_api_browser*.py): one headless Chromium (Debian's,
driven by Playwright) and one real gunicorn per test module, a logged-in page, a store on the site's database.

A test module imports the fixtures it uses by name (pytest finds them in its namespace). They are not in
conftest.py: `store` here is the site's SQLite file and must not replace the `store` of the other API tests, and
importing this module skips a test module where Playwright or Chromium is missing."""

import os
import re
import shutil

import pytest
from api_support import AUTH, TOKEN, http_json, start_gunicorn
from helpers import ProcessOwner
from queuectl_core.store import SqliteStore

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 20_000  # generous: two shared cores are noisy

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
    pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium)", allow_module_level=True)
expect = sync_api.expect


@pytest.fixture(scope="module")
def browser():
    """One Chromium for the module (never downloaded: Debian's package)."""
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """(base URL, database path) of one gunicorn shared by the module's tests (each uses its own job ids)."""
    db_path = tmp_path_factory.mktemp("dashboard") / "queue.db"
    owner = ProcessOwner()
    try:
        yield start_gunicorn(owner, db_path), db_path
    finally:
        owner.cleanup()


@pytest.fixture
def store(site):
    """A store on the site's database (it replaces the root conftest's `store` in the modules that import it)."""
    opened = SqliteStore(str(site[1]))
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def session_state(browser, site):
    """Cookies of a session started through the login form (once: each test's page starts logged in)."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    log_in(context.new_page(), site[0])
    state = context.storage_state()
    context.close()
    return state


@pytest.fixture
def page(browser, site, session_state):
    """A logged-in page on the overview; fails the test if any dialog opens or the page breaks its own CSP."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, storage_state=session_state)
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    dialogs, csp_errors = [], []
    opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    opened.on("console", lambda message: csp_errors.append(message.text)
              if "Content Security Policy" in message.text else None)
    opened.goto(f"{site[0]}/")
    expect(opened.locator("#counts")).to_be_visible()
    yield opened
    context.close()
    assert dialogs == [], f"a script opened a dialog: {dialogs}"
    assert csp_errors == [], f"the page broke its own Content-Security-Policy: {csp_errors}"


def log_in(page, base):
    """Log in through the login form with the operator token."""
    page.goto(f"{base}/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/")


def count(page, state):
    """The overview's count of jobs in `state`."""
    return page.locator(f'#counts [data-count="{state}"]')


def enqueue(base, job):
    """Enqueue a job through the API; its record."""
    status, record = http_json("POST", f"{base}/api/v1/jobs", job, AUTH)
    assert status == 201, record
    return record
