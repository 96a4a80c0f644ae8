"""The dashboard in a real headless Chromium (Debian's, driven by Playwright) against real gunicorn and workers.

The fixtures (browser, site, store, session_state, page) are browser_support's."""

import os
import re

import browser_support
from api_support import AUTH, http_json, make_dead
from browser_support import count, enqueue, expect
from helpers import wait_for

# The shared fixtures, bound by name in this module so that pytest finds them here (and only here: `store` is the
# site's, not the root conftest's).
browser, site, store, session_state, page = (browser_support.browser, browser_support.site, browser_support.store,
                                             browser_support.session_state, browser_support.page)

HOSTILE = [
    "echo '<script>alert(\"script\")</script>'",
    "echo '<img src=x onerror=alert(\"img\")>'",
    "echo \"it's \\\"quoted\\\" & <b>bold</b>\"",
]


def test_a_wrong_token_is_refused_on_the_login_page(browser, site):
    page = browser.new_page()
    page.goto(f"{site[0]}/login")
    page.fill("#token", "not-the-token")
    page.click("button[type=submit]")
    expect(page.locator(".alert.error")).to_have_text("Wrong token.")
    page.goto(f"{site[0]}/jobs")
    expect(page).to_have_url(re.compile(r"/login\?next=(%2F|/)jobs"))
    page.close()


def test_counts_and_workers_refresh_by_themselves_while_a_real_worker_runs(page, site, store, processes):
    base, db_path = site
    before = store.counts()
    for index in range(3):
        enqueue(base, {"command": "sleep 0.2", "id": f"counted-{index}"})
    expect(count(page, "pending")).to_have_text(str(before["pending"] + 3))
    processes.start_workers(db_path, "--count", "1")
    expect(count(page, "completed")).to_have_text(str(before["completed"] + 3))
    expect(count(page, "pending")).to_have_text(str(before["pending"]))
    worker_row = page.locator("#workers tbody tr").first
    expect(worker_row).to_contain_text(os.uname().nodename)
    expect(page.locator("#worker-count")).to_have_text("1 live")
    # The throughput chart shows the runs of this minute (it refreshes every 10 s, so reload to see them now).
    page.reload()
    expect(page.locator("#chart rect.succeeded").first).to_be_visible()


def test_a_job_enqueued_from_the_form_completes_and_shows_its_history(page, site, processes):
    base, db_path = site
    processes.start_workers(db_path, "--count", "1")
    page.click("nav >> text=Enqueue")
    page.fill("#command", "echo hello-from-the-form; echo to-stderr >&2")
    page.fill("#id", "from-form")
    page.fill("#priority", "3")
    page.click("#submit")
    link = page.locator("#enqueued-link")
    expect(link).to_have_text("from-form")
    link.click()
    expect(page).to_have_url(f"{base}/jobs/from-form")
    expect(page.locator("#job-state")).to_have_text("completed")
    expect(page.locator("#job-command")).to_have_text("echo hello-from-the-form; echo to-stderr >&2")
    run = page.locator("#history tbody tr").first
    expect(run.locator("td").nth(3)).to_have_text("0")
    run.locator("summary").click()
    expect(run.locator("pre.output")).to_contain_text("hello-from-the-form")
    expect(run.locator("pre.output")).to_contain_text("to-stderr")
    # The unfolded output stays open across the page's own refreshes.
    page.wait_for_timeout(2500)
    expect(run.locator("pre.output")).to_be_visible()


def test_the_enqueue_form_shows_every_validation_error_by_its_field(page, site, store):
    base, _ = site
    total_before = sum(store.counts().values())
    page.goto(f"{base}/enqueue")
    page.fill("#command", "   ")
    page.fill("#id", "bad id!")
    page.fill("#max_retries", "-1")
    page.fill("#priority", "high")
    page.fill("#timeout", "0")
    page.click("#submit")
    expect(page.locator('[data-error-for="command"]')).to_contain_text("command must be a non-empty string")
    expect(page.locator('[data-error-for="id"]')).to_contain_text("id must be 1-128 characters")
    expect(page.locator('[data-error-for="max_retries"]')).to_contain_text("max_retries must be an integer >= 0")
    expect(page.locator('[data-error-for="priority"]')).to_contain_text("priority must be an integer")
    expect(page.locator('[data-error-for="timeout"]')).to_contain_text("timeout must be a number of seconds > 0")
    expect(page.locator('[data-error-for="delay"]')).to_be_hidden()
    expect(page.locator("#max_retries")).to_have_class(re.compile("invalid"))
    assert sum(store.counts().values()) == total_before
    # A duplicate id is shown on the id field.
    enqueue(base, {"command": "true", "id": "taken", "delay": 3600})
    page.fill("#command", "true")
    for field in ("#id", "#max_retries", "#priority", "#timeout"):
        page.fill(field, "")
    page.fill("#id", "taken")
    page.click("#submit")
    expect(page.locator('[data-error-for="id"]')).to_contain_text("already exists")


def test_retry_one_dead_job_then_all_dead_jobs_after_a_confirmation(page, site, store):
    base, _ = site
    for job_id in ("dead-a", "dead-b", "dead-c"):
        make_dead(store, job_id)
    page.goto(f"{base}/jobs/dead-a")
    expect(page.locator("#job-state")).to_have_text("dead")
    expect(page.locator("#history tbody tr").first).to_contain_text("exit code 3")
    page.click("#retry")
    expect(page.locator("#job-state")).to_have_text("pending")
    expect(page.locator("#retry")).to_be_hidden()
    assert store.get_job("dead-a")["state"] == "pending"

    page.goto(f"{base}/jobs?state=dead")
    rows = page.locator("#jobs tbody tr[data-job]")
    expect(rows).to_have_count(2)
    page.click("#retry-all")
    expect(page.locator("#confirm")).to_be_visible()
    page.click("#confirm-cancel")  # cancelling changes nothing
    assert store.counts()["dead"] == 2
    page.click("#retry-all")
    page.click("#confirm-ok")
    expect(page.locator(".toast.success")).to_contain_text("2 dead job(s) are pending again")
    expect(page.locator("#jobs tbody")).to_contain_text("No jobs here.")
    assert store.get_job("dead-b")["state"] == "pending" and store.get_job("dead-b")["attempts"] == 0


def test_stop_all_workers_stops_the_real_worker_processes(page, site, processes):
    base, db_path = site
    worker = processes.start_workers(db_path, "--count", "2")
    expect(page.locator("#worker-count")).to_have_text("2 live")
    page.click("#stop-workers")
    page.click("#confirm-ok")
    expect(page.locator(".toast.success")).to_contain_text("Asked 2 worker(s) to stop.")
    expect(page.locator("#worker-count")).to_have_text("0 live")
    assert worker.wait(timeout=30) == 0


def test_hostile_commands_and_output_show_as_text_and_run_no_script(page, site, processes):
    base, db_path = site
    for index, command in enumerate(HOSTILE):
        enqueue(base, {"command": command, "id": f"hostile-{index}"})
    processes.start_workers(db_path, "--count", "1")
    wait_for(lambda: all(http_json("GET", f"{base}/api/v1/jobs/hostile-{i}", headers=AUTH)[1]["state"] == "completed"
                         for i in range(len(HOSTILE))), timeout=30, message="the hostile jobs to complete")
    page.goto(f"{base}/jobs?q=hostile")
    for command in HOSTILE:
        expect(page.locator("#jobs tbody")).to_contain_text(command)
    for index, command in enumerate(HOSTILE):
        page.goto(f"{base}/jobs/hostile-{index}")
        expect(page.locator("#job-command")).to_have_text(command)
        page.locator("#history summary").first.click()
        printed = command[len("echo "):].strip("'\"").replace('\\"', '"')
        expect(page.locator("pre.output").first).to_contain_text(printed.split(" ")[0])
    # Nothing the jobs printed became an element: no <img>, <script> or <b> from user data anywhere.
    assert page.locator("main img, main b, main script").count() == 0
    assert page.evaluate("document.querySelectorAll('script:not([src])').length") == 0


def test_settings_are_shown_changed_and_refused_with_the_message_of_config_set(page, site, store):
    base, _ = site
    page.goto(f"{base}/settings")
    expect(page.locator("#setting-max_retries")).to_have_value(str(store.get_settings()["max_retries"]))
    page.fill("#setting-max_retries", "6")
    page.select_option("#setting-backoff_jitter", "full")
    page.click("#save")
    expect(page.locator(".toast.success")).to_contain_text("max_retries")
    assert store.get_settings()["max_retries"] == 6 and store.get_settings()["backoff_jitter"] == "full"
    page.fill("#setting-lease_timeout", "0.5")
    page.fill("#setting-backoff_base", "fast")
    page.click("#save")
    expect(page.locator('[data-error-for="lease_timeout"]')).to_contain_text("lease_timeout must be a number >= 1")
    expect(page.locator('[data-error-for="backoff_base"]')).to_contain_text("got 'fast'")
    assert store.get_settings()["lease_timeout"] == 30  # all or nothing
    store.set_settings({"max_retries": 3, "backoff_jitter": "none"})


def test_the_jobs_list_searches_sorts_and_pages(page, site, store):
    base, _ = site
    for index in range(12):
        enqueue(base, {"command": f"echo page-{index:02d}", "id": f"paged-{index:02d}", "delay": 3600,
                       "priority": index % 3})
    page.goto(f"{base}/jobs?q=page-&limit=25")
    page.select_option("#page-size", "25")
    expect(page.locator("#range")).to_have_text("1–12 of 12")
    page.select_option("#page-size", "25")
    page.goto(f"{base}/jobs?q=page-&limit=5")
    expect(page.locator("#range")).to_have_text("1–5 of 12")
    expect(page.locator("#jobs tbody tr").first).to_contain_text("paged-11")  # newest first
    page.click("#next")
    expect(page.locator("#range")).to_have_text("6–10 of 12")
    expect(page).to_have_url(re.compile(r"offset=5"))
    page.click('[data-sort="id"]')  # sorting goes back to the first page, descending first
    expect(page.locator("#range")).to_have_text("1–5 of 12")
    page.click('[data-sort="id"]')
    expect(page.locator("#jobs tbody tr").first).to_contain_text("paged-00")
    page.fill("#search", "page-07")
    expect(page.locator("#range")).to_have_text("1–1 of 1")
    page.click('#state-tabs [data-state="completed"]')
    expect(page.locator("#jobs tbody")).to_contain_text("No job matches.")


def test_logging_out_ends_the_session(page, site):
    base, _ = site
    page.click("text=Log out")
    expect(page).to_have_url(f"{base}/login")
    page.goto(f"{base}/")
    expect(page).to_have_url(re.compile(r"/login\?next="))


# ---- operator features (issue 7) ------------------------------------------------------------------------------


def test_the_job_page_shows_a_running_jobs_output_live_and_cancels_it(page, site, processes):
    base, db_path = site
    enqueue(base, {"command": "for n in 1 2 3 4 5 6 7 8 9; do echo tick-$n; sleep 1; done", "id": "live-log"})
    processes.start_workers(db_path, "--count", "1")
    page.goto(f"{base}/jobs/live-log")
    expect(page.locator("#log")).to_contain_text("tick-1")
    expect(page.locator("#log-label")).to_contain_text("running, live")
    expect(page.locator("#log")).to_contain_text("tick-3")  # new lines appear while the job runs
    page.click("#cancel")
    expect(page.locator("#confirm-cancel")).to_have_text("Keep it")
    page.click("#confirm-ok")
    expect(page.locator("#job-state")).to_have_text("cancelled")
    expect(page.locator("#log-label")).to_contain_text("finished")
    expect(page.locator("#cancel")).to_be_hidden()
    expect(page.locator("#history tbody tr").first).to_contain_text("cancelled by request while running")


def test_pause_and_resume_from_the_overview(page, site, store, processes):
    base, db_path = site
    processes.start_workers(db_path, "--count", "1")
    page.click("#pause-queue")
    page.click("#confirm-ok")
    expect(page.locator("#paused-banner")).to_be_visible()
    expect(page.locator("#pause-queue")).to_have_text("Resume queue")
    enqueue(base, {"command": "true", "id": "held-by-pause"})
    page.wait_for_timeout(2500)
    assert store.get_job("held-by-pause")["state"] == "pending"
    page.click("#pause-queue")  # resuming asks nothing
    expect(page.locator("#paused-banner")).to_be_hidden()
    wait_for(lambda: store.get_job("held-by-pause")["state"] == "completed", 20, message="the job to run")


def test_cancel_and_purge_from_the_jobs_list_and_dependencies_on_the_job_page(page, site, store):
    base, _ = site
    enqueue(base, {"command": "true", "id": "to-cancel", "delay": 3600})
    enqueue(base, {"command": "true", "id": "after-it", "after": ["to-cancel"], "no_retry_on": [2, "timeout"]})
    page.goto(f"{base}/jobs/after-it")
    expect(page.locator("#job-after a")).to_have_text("to-cancel")
    expect(page.locator("#job-fields")).to_contain_text("2, timeout")
    page.goto(f"{base}/jobs?q=to-cancel")
    page.click('[data-cancel="to-cancel"]')
    page.click("#confirm-ok")
    expect(page.locator(".toast.success")).to_contain_text("Job to-cancel is cancelled.")
    assert store.get_job("after-it")["last_error"] == "dependency 'to-cancel' was cancelled"
    page.goto(f"{base}/jobs?state=cancelled")
    expect(page.locator("#purge-controls")).to_be_visible()
    page.select_option("#purge-age", "0")
    page.click("#purge")
    expect(page.locator("#confirm-title")).to_contain_text("cancelled job(s)?")
    page.click("#confirm-ok")
    expect(page.locator(".toast.success")).to_contain_text("cancelled job(s)")
    expect(page.locator("#jobs tbody")).to_contain_text("No jobs here.")
    assert store.counts()["cancelled"] == 0


def test_the_enqueue_form_sends_dependencies_and_shows_an_unknown_one_by_its_field(page, site, store):
    base, _ = site
    enqueue(base, {"command": "true", "id": "form-first", "delay": 3600})
    page.goto(f"{base}/enqueue")
    page.fill("#command", "true")
    page.fill("#after", "form-first, no-such-job")
    page.click("#submit")
    expect(page.locator('[data-error-for="after"]')).to_contain_text("after: no job with id 'no-such-job'")
    page.fill("#after", "form-first")
    page.fill("#retry_on", "1 3")
    page.fill("#id", "form-second")
    page.click("#submit")
    expect(page.locator("#enqueued-link")).to_have_text("form-second")
    job = store.get_job("form-second")
    assert (job["after"], job["retry_on"]) == (["form-first"], [1, 3])
