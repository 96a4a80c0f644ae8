"""The dashboard's read-only view for the viewer token and the pages of the later issues (audit, schedules, queues,
queue and tag filters) in a real headless Chromium against real gunicorn and workers.

The fixtures (browser, site, store, session_state, page) are browser_support's."""

import re

import browser_support
from api_support import AUTH, READ_TOKEN, add_job, http_json, make_dead, start_gunicorn
from browser_support import TIMEOUT_MS, count, enqueue, expect
from queuectl_core.store import SqliteStore

# The shared fixtures, bound by name in this module (see test_api_browser.py).
browser, site, store, session_state, page = (browser_support.browser, browser_support.site, browser_support.store,
                                             browser_support.session_state, browser_support.page)

# ---- the viewer token: a read-only dashboard ---------------------------------------------------------------------

# The only buttons and inputs a viewer's pages may show: navigation, filters, sorting, paging, following the log.
VIEWER_CONTROLS = {"Log out", "‹ Previous", "Next ›", "search", "queue-filter", "tag-filter", "page-size", "log-follow"}


def visible_controls(page):
    """Every visible button (by its text), and every visible enabled input, select or textarea (by its id)."""
    return page.evaluate("""() => {
        const shown = (node) => node.offsetParent !== null && getComputedStyle(node).visibility !== "hidden";
        const buttons = [...document.querySelectorAll("button")].filter(shown)
            .filter((node) => !node.closest("#state-tabs, th"))  // state tabs and sort headers only filter and sort
            .map((node) => node.textContent.trim());
        const inputs = [...document.querySelectorAll("input, select, textarea")].filter(shown)
            .filter((node) => !node.matches(":disabled") && node.type !== "hidden").map((node) => node.id);
        return [...buttons, ...inputs];
    }""")


def test_a_viewer_logs_in_with_the_read_token_and_finds_no_action_anywhere(browser, tmp_path, processes):
    db_path = tmp_path / "viewer.db"
    base = start_gunicorn(processes, db_path, extra_env={"QUEUECTL_API_READ_TOKEN": READ_TOKEN})
    seeded = SqliteStore(str(db_path))
    make_dead(seeded, "viewer-dead")
    add_job(seeded, "sleep 100", id="viewer-pending")
    seeded.close()
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill("#token", READ_TOKEN)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base}/")
    expect(page.locator("#read-only")).to_have_text("read-only")
    expect(count(page, "dead")).to_have_text("1")
    expect(page.locator("#worker-count")).to_have_text("0 live")
    expect(page.locator(".nav")).not_to_contain_text("Enqueue")
    pages = [("/", "#counts"), ("/jobs", '#jobs tr[data-job="viewer-pending"]'),
             ("/jobs?state=dead", '#jobs tr[data-job="viewer-dead"]'),
             ("/jobs?state=completed", "#jobs td.empty"),
             ("/jobs/viewer-dead", "#history tbody tr[data-attempt]"),
             ("/jobs/viewer-pending", "#job-state .badge"), ("/queues", '#queues tr[data-name="default"]'),
             ("/settings", "#setting-max_retries")]
    for path, loaded in pages:
        page.goto(f"{base}{path}")
        expect(page.locator(loaded).first).to_be_visible()
        expect(page.locator("#live-text")).to_have_text("live")
        assert set(visible_controls(page)) <= VIEWER_CONTROLS, (path, visible_controls(page))
        actions = "[data-retry], [data-cancel], #retry, #cancel, #purge, #retry-all, #queues form"
        assert page.locator(actions).count() == 0, path
    expect(page.locator("#setting-max_retries")).to_have_value("3")  # shown, but disabled
    expect(page.locator("#setting-max_retries")).to_be_disabled()
    page.goto(f"{base}/enqueue")
    expect(page.locator("#read-only-notice")).to_contain_text("read-only")
    assert page.locator("form#enqueue-form").count() == 0
    # The server refuses too: a change sent from the viewer's page with its session and CSRF header gets 403.
    status = page.evaluate("""async () => {
        const csrf = document.querySelector('meta[name="csrf-token"]').content;
        const response = await fetch("/api/v1/pause", {method: "POST", headers: {"X-CSRF-Token": csrf}});
        return [response.status, (await response.json()).error];
    }""")
    assert status[0] == 403 and "read-only" in status[1]
    assert http_json("GET", f"{base}/api/v1/stats", headers=AUTH)[1]["paused"] is False
    context.close()


# ---- the audit log (issue 13) ---------------------------------------------------------------------------------


def test_the_audit_page_shows_operator_actions_as_text_newest_first_and_pages(page, site, store):
    base, _ = site
    hostile = "echo '<img src=x onerror=alert(\"audit\")><script>alert(1)</script>'"
    enqueue(base, {"command": hostile, "id": "audited", "delay": 3600})
    page.click("nav >> text=Audit")
    expect(page).to_have_url(f"{base}/audit")
    first = page.locator("#audit tbody tr").first
    expect(first.locator("td").nth(1)).to_have_text("api:operator")
    expect(first.locator("td").nth(2)).to_have_text("enqueue")
    expect(first.locator("td").nth(3)).to_have_text("audited")
    expect(first.locator("td").nth(4)).to_contain_text('<img src=x onerror=alert(\\"audit\\")><script>')
    assert page.locator("main img, main script").count() == 0
    # A new action shows up by itself (the page refreshes), on top.
    store.pause(actor="cli:someone@elsewhere")
    expect(first.locator("td").nth(1)).to_have_text("cli:someone@elsewhere", timeout=TIMEOUT_MS)
    expect(first.locator("td").nth(2)).to_have_text("pause")
    store.resume()  # (no actor: not recorded) so that the other tests find the queue running
    for n in range(60):
        store.set_settings({"max_retries": 3}, actor=f"cli:paging-{n}@host")
    expect(first.locator("td").nth(1)).to_have_text("cli:paging-59@host", timeout=TIMEOUT_MS)
    expect(page.locator("#range")).to_have_text("1–50")
    expect(page.locator("#newer")).to_be_disabled()
    page.click("#older")
    expect(page).to_have_url(f"{base}/audit?offset=50")
    expect(first.locator("td").nth(1)).to_have_text("cli:paging-9@host")
    page.click("#newer")
    expect(page.locator("#range")).to_have_text("1–50")


def test_the_schedules_page_adds_with_the_cli_s_checks_runs_pauses_and_deletes(page, site, store):
    base, _ = site
    page.goto(f"{base}/schedules")
    expect(page.locator("#schedules tbody")).to_contain_text("No schedules.")
    page.fill("#schedule-name", "nightly")
    page.fill("#schedule-when", "61 2 * * *")
    page.fill("#schedule-job", '{"command": "echo <b>backup</b>"}')
    page.click("#add-schedule")
    expect(page.locator('[data-error-for="when"]')).to_contain_text("not valid")  # the server's check, by its field
    assert store.list_schedules() == []
    page.fill("#schedule-when", "30 2 * * *")
    page.fill("#schedule-timezone", "Europe/Berlin")
    page.click("#add-schedule")
    row = page.locator('#schedules tr[data-name="nightly"]')
    expect(row).to_contain_text("30 2 * * *")
    expect(row).to_contain_text("echo <b>backup</b>")  # user data as text, never as markup
    row.locator('[data-action="run now"]').click()
    expect(page.locator(".toast.success").last).to_contain_text("Enqueued")
    last_job = store.get_schedule("nightly")["last_job_id"]
    expect(row.locator(f'a[href="/jobs/{last_job}"]')).to_be_visible()
    row.locator('[data-action="pause"]').click()
    expect(row).to_contain_text("paused")
    assert store.get_schedule("nightly")["paused"] is True
    row.locator('[data-action="resume"]').click()
    expect(row).to_contain_text("active")
    row.locator('[data-action="delete"]').click()
    page.click("#confirm-ok")
    expect(page.locator("#schedules tbody")).to_contain_text("No schedules.")
    assert store.list_schedules() == []


# ---- named queues (issue 14) ----------------------------------------------------------------------------------


def test_the_queues_page_sets_a_limit_and_a_rate_with_the_server_s_checks_and_pauses(page, site, store):
    base, _ = site
    enqueue(base, {"command": "echo <b>encode</b>", "id": "q-encode-1", "queue": "encode", "tags": ["video"],
                   "delay": 3600})
    page.click("nav >> text=Queues")
    expect(page).to_have_url(f"{base}/queues")
    row = page.locator('#queues tr[data-name="encode"]')
    expect(row.locator('[data-field="limit"]')).to_have_text("none")
    expect(row.locator('[data-field="paused"]')).to_have_text("active")
    row.locator('.queue-limit input').fill("-1")
    row.locator('[data-action="set-limit"]').click()
    expect(row.locator('.queue-limit [data-error-for="limit"]')).not_to_be_empty()  # the server's message, by its field
    assert store.queue_info("encode")["limit"] is None
    row.locator('.queue-limit input').fill("2")
    row.locator('[data-action="set-limit"]').click()
    expect(row.locator('[data-field="limit"]')).to_have_text("2")
    expect(row.locator('.queue-limit [data-error-for="limit"]')).to_be_empty()
    assert store.queue_info("encode")["limit"] == 2
    row.locator('.queue-rate input').fill("10 per minute")
    row.locator('[data-action="set-rate"]').click()
    expect(row.locator('.queue-rate [data-error-for="rate"]')).to_contain_text("rate")
    row.locator('.queue-rate input').fill("10/m")
    row.locator('[data-action="set-rate"]').click()
    expect(row.locator('[data-field="rate"]')).to_have_text("10/m")
    row.locator('[data-action="pause"]').click()
    expect(row.locator('[data-field="paused"]')).to_contain_text("paused since")
    assert store.queue_info("encode")["paused"] is True
    row.locator('[data-action="resume"]').click()
    expect(row.locator('[data-field="paused"]')).to_have_text("active")
    assert store.queue_info("encode")["paused"] is False
    row.locator('.queue-limit input').fill("")  # empty: no limit
    row.locator('[data-action="set-limit"]').click()
    expect(row.locator('[data-field="limit"]')).to_have_text("none")
    assert store.queue_info("encode")["limit"] is None


def test_the_jobs_page_shows_and_filters_by_queue_and_tag_and_the_form_sends_them(page, site, store):
    base, _ = site
    enqueue(base, {"command": "true", "id": "qt-deploy", "queue": "deploys", "tags": ["prod", "eu"], "delay": 3600})
    enqueue(base, {"command": "true", "id": "qt-other", "queue": "deploys", "tags": ["staging"], "delay": 3600})
    page.goto(f"{base}/jobs?queue=deploys")
    expect(page.locator("#queue-filter")).to_have_value("deploys")
    expect(page.locator("#jobs tbody tr[data-job]")).to_have_count(2)
    deploy = page.locator('#jobs tr[data-job="qt-deploy"]')
    expect(deploy.locator('[data-field="queue"]')).to_have_text("deploys")
    expect(deploy.locator('[data-field="tags"] .tag')).to_have_text(["prod", "eu"])
    page.fill("#tag-filter", "prod")
    expect(page).to_have_url(re.compile(r"[?&]tag=prod"))
    expect(page.locator("#jobs tbody tr[data-job]")).to_have_count(1)
    expect(deploy).to_be_visible()
    page.goto(f"{base}/enqueue")
    page.fill("#command", "echo tagged")
    page.fill("#id", "qt-from-form")
    page.fill("#queue", "deploys")
    page.fill("#tags", "prod, nightly")
    page.click("#submit")
    expect(page.locator("#enqueued-link")).to_have_text("qt-from-form")
    job = store.get_job("qt-from-form")
    assert (job["queue"], job["tags"]) == ("deploys", ["prod", "nightly"])
