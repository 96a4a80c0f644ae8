"""/metrics: Prometheus text computed from the database at scrape time."""

from api_support import add_job, make_dead
from helpers import busy_worker
from prometheus_client.parser import text_string_to_metric_families
from queuectl_core.lifecycle import COMPLETED, Outcome
from queuectl_core.store import SqliteStore
from queuectl_core.timeutil import now_ms
from queuectl_core.validation import check_job


def scrape(client):
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_export_jobs_by_state_without_a_token(client, db_path):
    store = SqliteStore(str(db_path))
    make_dead(store, "d")
    add_job(store, id="p1")
    add_job(store, id="p2", delay=3600)
    samples = scrape(client)
    assert samples[("queuectl_jobs", (("queue", "default"), ("state", "pending")))] == 2
    assert samples[("queuectl_jobs", (("queue", "default"), ("state", "dead")))] == 1
    assert samples[("queuectl_jobs", (("queue", "default"), ("state", "completed")))] == 0
    assert samples[("queuectl_runs_finished_total", (("outcome", "failed"),))] == 1
    assert samples[("queuectl_runs_finished_total", (("outcome", "succeeded"),))] == 0
    assert samples[("queuectl_workers", ())] == 0
    # p1 is due (p2 waits an hour): its age is small but present.
    assert 0 <= samples[("queuectl_oldest_waiting_job_age_seconds", ())] < 60
    store.close()


def test_metrics_histogram_counts_run_durations(client, db_path):
    store = SqliteStore(str(db_path))
    store.enqueue(check_job({"command": "true", "id": "quick"}), now=1_000_000)
    claim = store.claim_next("w", 30, now=1_000_000)
    outcome = Outcome(COMPLETED, 0, None)
    store.finish_run(claim, outcome, "", now=1_002_000)
    store.register_worker("w1", "h", 1)
    store.heartbeat("w1", 30, stats={"worker": {"cpu_percent": 2.5, "memory_bytes": 2048}, "job": None})
    samples = scrape(client)
    assert samples[("queuectl_run_duration_seconds_count", ())] == 1
    assert samples[("queuectl_run_duration_seconds_sum", ())] == 2.0
    assert samples[("queuectl_run_duration_seconds_bucket", (("le", "1.0"),))] == 0
    assert samples[("queuectl_run_duration_seconds_bucket", (("le", "5.0"),))] == 1
    assert samples[("queuectl_run_duration_seconds_bucket", (("le", "+Inf"),))] == 1
    assert samples[("queuectl_runs_finished_total", (("outcome", "succeeded"),))] == 1
    assert samples[("queuectl_workers", ())] == 1
    assert samples[("queuectl_worker_cpu_percent", (("process", "worker"), ("worker", "w1")))] == 2.5
    assert samples[("queuectl_worker_memory_bytes", (("process", "worker"), ("worker", "w1")))] == 2048
    store.close()


def test_metrics_show_each_worker_s_busy_and_idle_slots(client, db_path):
    store = SqliteStore(str(db_path))
    busy_worker(store, "w4", 4, [30, 10, 2])
    busy_worker(store, "w1", 1, [5])
    store.register_worker("idle", "h", 3)
    slots = {labels: value for (name, labels), value in scrape(client).items() if name == "queuectl_worker_slots"}
    assert slots == {(("state", "busy"), ("worker", "w4")): 3, (("state", "idle"), ("worker", "w4")): 1,
                     (("state", "busy"), ("worker", "w1")): 1, (("state", "idle"), ("worker", "w1")): 0,
                     (("state", "busy"), ("worker", "idle")): 0, (("state", "idle"), ("worker", "idle")): 1}
    store.close()


def test_oldest_waiting_age_counts_from_when_the_job_became_due(client, db_path):
    store = SqliteStore(str(db_path))
    store.enqueue(check_job({"command": "true", "id": "old"}), now=now_ms() - 120_000)
    assert scrape(client)[("queuectl_oldest_waiting_job_age_seconds", ())] >= 120
    store.close()


def test_metrics_count_jobs_per_queue_and_state_and_the_sums_are_the_totals(client, db_path):
    store = SqliteStore(str(db_path))
    assert scrape(client)[("queuectl_jobs", (("queue", "default"), ("state", "pending")))] == 0  # before any job
    make_dead(store, "d")
    for queue, count in (("deploy", 2), ("encode", 3), (None, 1)):
        for _ in range(count):
            store.enqueue(check_job({"command": "true"} if queue is None else {"command": "true", "queue": queue}))
    store.set_queue_limit("idle", 2)  # a queue with a setting and no jobs has no job series
    samples = scrape(client)
    jobs = {labels: value for (name, labels), value in samples.items() if name == "queuectl_jobs"}
    per_queue = {}
    for labels, value in jobs.items():
        labels = dict(labels)
        per_queue.setdefault(labels["queue"], {})[labels["state"]] = value
    assert sorted(per_queue) == ["default", "deploy", "encode"]
    assert (per_queue["deploy"]["pending"], per_queue["encode"]["pending"]) == (2, 3)
    assert (per_queue["default"]["pending"], per_queue["default"]["dead"]) == (1, 1)
    assert all(len(states) == 6 for states in per_queue.values())  # every state, zeros included
    totals = store.counts()
    assert {state: sum(states[state] for states in per_queue.values()) for state in totals} == totals
    store.close()
