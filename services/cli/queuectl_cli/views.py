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


def worker_lines(workers):
    """A table of live workers, as lines."""
    rows = []
    for worker in workers:
        job = worker["current_job"]
        if job:
            job = f"{job} ({age(worker['current_job_started_at']).replace(' ago', '')})"
        rows.append([worker["id"], worker["host"], worker["pid"], job or "idle",
                     age(worker["heartbeat_at"]), "yes" if worker["stop_requested"] else "no"])
    return table_lines(["ID", "HOST", "PID", "JOB", "HEARTBEAT", "STOPPING"], rows)


def status_lines(summary, paused_since):
    """`queuectl status` for people: jobs per state, the pause, the live workers."""
    lines = ["Jobs", *(f"  {state:<11}{summary['jobs'][state]:>8}" for state in STATES)]
    if summary["paused"]:
        lines.append(f"\nPaused since {paused_since}: workers claim nothing until `queuectl resume`.")
    lines.append(f"\nWorkers: {len(summary['workers'])} live")
    if summary["workers"]:
        lines += worker_lines(summary["workers"])
    return lines
