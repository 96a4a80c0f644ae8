"""Text for people, without click: shared by the commands (through output.py) and by quick.py, so that the
fast path of `queuectl status` prints exactly what the click command prints."""

from datetime import datetime

from queuectl_core.lifecycle import STATES

from .terminal import visible


def shorten(text, width):
    """One line of at most `width` characters, its controls shown as escapes (a newline as "\\n")."""
    text = " ".join(visible(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def table_lines(headers, rows):
    """Lines of columns aligned to their widest cell; every cell one line, its controls shown as escapes."""
    cells = [[visible("-" if c is None else c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip()
            for row in [list(headers), *cells]]


def age(iso_time, now=None):
    """'3.2s ago'-style distance from an ISO time to now."""
    if iso_time is None:
        return "-"
    seconds = ((now or datetime.now().astimezone()) - datetime.fromisoformat(iso_time)).total_seconds()
    return f"{duration(abs(seconds))} {'ago' if seconds >= 0 else 'from now'}"


def duration(seconds):
    """A short human duration: 0.25s, 42s, 3m05s, 2h10m."""
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


SHOWN_JOBS = 5  # a worker's lines in a table at most: past that, its longest running jobs and "+N more"


def running_jobs(worker):
    """The jobs a worker record runs, [{"id", "started_at"}], longest running first (a record from an API older
    than slots has only `current_job`)."""
    if "jobs" in worker:
        return worker["jobs"]
    if not worker.get("current_job"):
        return []
    return [{"id": worker["current_job"], "started_at": worker.get("current_job_started_at")}]


def slots(worker):
    """'busy/total': the worker's running jobs out of its slots (`worker start --concurrency`)."""
    return f"{len(running_jobs(worker))}/{worker.get('concurrency') or 1}"


def job_labels(jobs, now, every_job=False):
    """One 'ID (run time)' per running job; past SHOWN_JOBS (unless `every_job`) the first few and '+N more'."""
    shown = jobs if every_job or len(jobs) <= SHOWN_JOBS else jobs[:SHOWN_JOBS - 1]
    labels = [f"{job['id']} ({run_time(job['started_at'], now)})" for job in shown]
    if len(shown) < len(jobs):
        labels.append(f"+{len(jobs) - len(shown)} more (worker list --all)")
    return labels or ["idle"]


def run_time(iso_time, now):
    """How long a job has run: '12s' (never negative, whatever the clocks of the worker's host and this one)."""
    if iso_time is None:
        return "-"
    return duration(max(0.0, (now - datetime.fromisoformat(iso_time)).total_seconds()))


def worker_lines(workers, every_job=False):
    """A table of live workers, as lines: each with its slots (busy/total) and its running jobs, one a line under
    it, longest running first (past SHOWN_JOBS, unless `every_job`, the first few and '+N more')."""
    now = datetime.now().astimezone()
    rows = []
    for worker in workers:
        labels = job_labels(running_jobs(worker), now, every_job)
        rows.append([worker["id"], worker["host"], worker["pid"], slots(worker), age(worker["heartbeat_at"], now),
                     "yes" if worker["stop_requested"] else "no", labels[0]])
        rows += [["", "", "", "", "", "", label] for label in labels[1:]]
    return table_lines(["ID", "HOST", "PID", "SLOTS", "HEARTBEAT", "STOPPING", "JOBS"], rows)


def status_lines(summary, paused_since):
    """`queuectl status` for people: jobs per state, the pause, the live workers."""
    lines = ["Jobs", *(f"  {state:<11}{summary['jobs'][state]:>8}" for state in STATES)]
    if summary["paused"]:
        lines.append(f"\nPaused since {paused_since}: workers claim nothing until `queuectl resume`.")
    lines.append(f"\nWorkers: {len(summary['workers'])} live")
    if summary["workers"]:
        lines += worker_lines(summary["workers"])
    return lines
