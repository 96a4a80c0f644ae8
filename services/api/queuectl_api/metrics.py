"""Prometheus metrics computed from the database at scrape time.

Nothing is counted in process memory, so every gunicorn worker answers the same numbers
(no prometheus_client multiprocess directory needed) and so does a restarted server."""

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class SnapshotCollector:
    """Turns one `SqliteStore.metrics_snapshot()` into metric families."""

    def __init__(self, snapshot):
        self.snapshot = snapshot

    def collect(self):
        """Yield every metric family of the snapshot."""
        snapshot = self.snapshot
        # Per queue and state; sum by (state) gives the totals the gauge had before queues had names.
        jobs = GaugeMetricFamily("queuectl_jobs", "Jobs in each queue and state.", labels=["queue", "state"])
        for queue, counts in sorted(snapshot["queues"].items()):
            for state, count in counts.items():
                jobs.add_metric([queue, state], count)
        yield jobs
        runs = CounterMetricFamily("queuectl_runs_finished", "Runs finished, by outcome.", labels=["outcome"])
        for outcome, count in snapshot["runs"].items():
            runs.add_metric([outcome], count)
        yield runs
        durations = snapshot["durations"]
        buckets = [(str(float(seconds)), count) for seconds, count in durations["buckets"]]
        buckets.append(("+Inf", durations["count"]))
        yield HistogramMetricFamily(
            "queuectl_run_duration_seconds", "Duration of finished runs.",
            buckets=buckets, sum_value=durations["sum"],
        )
        workers = snapshot["workers"]
        yield GaugeMetricFamily("queuectl_workers", "Live workers (heartbeat within lease_timeout).",
                                value=len(workers))
        yield GaugeMetricFamily("queuectl_paused", "1 while the queue is paused (queuectl pause): nothing is claimed.",
                                value=1 if snapshot.get("paused") else 0)
        yield GaugeMetricFamily("queuectl_oldest_waiting_job_age_seconds",
                                "How long the oldest due job (pending, or failed and due for a retry) has waited.",
                                value=snapshot["oldest_waiting_seconds"])
        cpu = GaugeMetricFamily("queuectl_worker_cpu_percent", "CPU of each worker process and its job.",
                                labels=["worker", "process"])
        memory = GaugeMetricFamily("queuectl_worker_memory_bytes", "Resident memory of each worker and its job.",
                                   labels=["worker", "process"])
        slots = GaugeMetricFamily("queuectl_worker_slots", "Each worker's slots (worker start --concurrency), busy"
                                  " running a job or idle.", labels=["worker", "state"])
        for worker in workers:
            busy = len(worker["jobs"])
            slots.add_metric([worker["id"], "busy"], busy)
            slots.add_metric([worker["id"], "idle"], max(0, worker["concurrency"] - busy))
            for process in ("worker", "job"):
                figures = (worker.get("stats") or {}).get(process)
                if isinstance(figures, dict):
                    cpu.add_metric([worker["id"], process], figures.get("cpu_percent") or 0)
                    memory.add_metric([worker["id"], process], figures.get("memory_bytes") or 0)
        yield slots
        yield cpu
        yield memory


def render(snapshot):
    """The Prometheus text exposition of `snapshot`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot))
    return generate_latest(registry)

