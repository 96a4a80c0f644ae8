"""The overview's workers in a real headless Chromium (issue 16): each worker shows its slots, busy/total, and the
jobs it runs, longest running first, as links with their run time; a worker of 50 slots stays a few lines tall
until its "+N more" is clicked, and stays expanded across the page's refreshes. The workers and their runs are real
store rows (register_worker, claim_many), besides one real worker process."""

import os
import re

import browser_support
from browser_support import enqueue, expect
from helpers import busy_worker

# The shared fixtures, bound by name in this module (see test_api_browser.py).
browser, site, store, session_state, page = (browser_support.browser, browser_support.site, browser_support.store,
                                             browser_support.session_state, browser_support.page)


def worker_row(page, worker_id):
    return page.locator(f'#workers tbody tr[data-worker="{worker_id}"]')


def job_links(row):
    return row.locator(".slot-jobs li a")


def keep_registered_workers_live(store):
    """These workers never heartbeat: a long lease_timeout keeps them listed however slow the machine."""
    store.set_setting("lease_timeout", 3600)


def test_each_worker_shows_its_busy_and_total_slots_and_its_running_jobs_as_links(page, site, store):
    keep_registered_workers_live(store)
    jobs = busy_worker(store, "w4", 4, [90, 20, 3])
    store.register_worker("w1", "host", 7)
    busy, plain = worker_row(page, "w4"), worker_row(page, "w1")
    expect(busy.locator("td.slots")).to_have_text("3/4")
    assert busy.locator("meter").get_attribute("value") == "3" and busy.locator("meter").get_attribute("max") == "4"
    expect(job_links(busy)).to_have_text(jobs)  # longest running first
    assert [job_links(busy).nth(index).get_attribute("href") for index in range(3)] == [f"/jobs/{job}" for job in jobs]
    run_times = busy.locator(".slot-jobs .run-time").all_inner_texts()
    assert re.fullmatch(r"1 m \d+ s", run_times[0]) and 90 <= seconds(run_times[0]) < 120, run_times
    assert 20 <= seconds(run_times[1]) < 50 and 3 <= seconds(run_times[2]) < 33, run_times
    expect(busy.locator(".more-jobs")).to_have_count(0)  # 3 jobs: no "+N more"
    expect(plain.locator("td.slots")).to_have_text("0/1")
    expect(plain).to_contain_text("idle")
    job_links(busy).first.click()
    expect(page).to_have_url(f"{site[0]}/jobs/{jobs[0]}")
    expect(page.locator("body")).to_contain_text("sleep 600")


def seconds(text):
    """The dashboard's formatAge back in seconds: '3 s', '1 m 30 s'."""
    minutes = re.search(r"(\d+) m", text)
    secs = re.search(r"(\d+) s", text)
    return (int(minutes[1]) * 60 if minutes else 0) + (int(secs[1]) if secs else 0)


def test_a_worker_of_50_slots_stays_short_until_more_is_clicked_and_stays_expanded_across_refreshes(
        page, site, store):
    keep_registered_workers_live(store)
    jobs = busy_worker(store, "w50", 50, [300, 200, 100] + [10] * 44)
    row = worker_row(page, "w50")
    expect(row.locator("td.slots")).to_have_text("47/50")
    expect(job_links(row)).to_have_text(jobs[:4])
    more = row.locator(".more-jobs")
    expect(more).to_have_text("+43 more")
    collapsed = row.bounding_box()["height"]
    assert collapsed < 160, collapsed  # about 5 lines, as a worker of 5 jobs

    more.click()  # every job, in a row of its own under the worker, as wide as the table
    every = page.locator('#workers tr[data-jobs-of="w50"]')
    expect(every.locator("a")).to_have_text(jobs)
    expect(more).to_have_text("Show fewer (47 below)")
    expect(more).to_be_focused()  # the redrawn row's button, for the keyboard
    expect(job_links(row)).to_have_count(0)
    height = every.bounding_box()["height"]
    assert height < 340, height  # a grid of several columns (47 lines would be ~1000 px), scrolling past 300 px

    # On a narrower window the grid scrolls; a refresh (every 2 s) keeps it where it was scrolled to. A new job for
    # the worker: the refresh shows it (48/50) and the list stays open.
    page.set_viewport_size({"width": 800, "height": 1000})
    grid = every.locator(".slot-jobs")
    expect(grid).to_have_js_property("scrollTop", 0)
    assert grid.evaluate("list => list.scrollHeight - list.clientHeight") > 30  # the table's narrowest: ~900 px
    grid.evaluate("list => { list.scrollTop = 30; }")
    enqueue(site[0], {"command": "sleep 600", "id": "w50-late"})
    store.claim_many("w50", 3600, 1)
    expect(row.locator("td.slots")).to_have_text("48/50")
    expect(every.locator("a")).to_have_count(48)
    expect(every.locator("a").last).to_have_text("w50-late")
    assert grid.evaluate("list => list.scrollTop") == 30

    more.click()
    expect(every).to_have_count(0)
    expect(more).to_be_focused()
    expect(job_links(row)).to_have_text(jobs[:4])
    expect(more).to_have_text("+44 more")


def test_a_real_worker_shows_one_slot_busy_with_its_job(page, site, processes):
    base, db_path = site
    enqueue(base, {"command": "sleep 60", "id": "real-slot-job"})
    processes.start_workers(db_path, "--count", "1")
    row = page.locator("#workers tbody tr", has=page.locator('a[href="/jobs/real-slot-job"]'))
    expect(row.locator("td.slots")).to_have_text("1/1")
    expect(row).to_contain_text(os.uname().nodename)
    expect(row.locator(".run-time")).to_have_text(re.compile(r"^\d+ s$"))
