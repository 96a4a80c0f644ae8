"""The table's rows and their telling: progress lines, figure() rows, peers' results, text and Markdown."""

import json
import sys
import time


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def figure(key, name, value, unit, target, met, ratio=None, note="", peers=None, **detail):
    """One row of the table."""
    return {"key": key, "figure": name, "value": value, "unit": unit, "target": target, "ratio": ratio,
            "met": met, "note": note, "peers": peers or {}, "detail": detail}


def _peer(callable_, *args, **kwargs):
    """A peer's result, or {'skipped': reason} when its package or server is absent."""
    from systems import Unavailable

    try:
        return callable_(*args, **kwargs)
    except Unavailable as error:
        return {"skipped": str(error)}
    except Exception as error:  # a peer that breaks must not take the suite down
        return {"skipped": f"failed: {error!r}"}


ORDER = ("raw_spawn", "throughput", "throughput_slots", "pickup", "idle_cpu", "pickup_slots", "slots_memory",
         "slots_pg_connections", "claim_flat", "claim_flow", "claim_flow_held",
         "throughput_ab", "bulk_ab",
         "claims_ab",
         "enqueue_python", "enqueue_bulk",
         "enqueue_cli", "api_batch", "api_enqueue_one", "status_store", "status_cli", "api_stats", "api_jobs",
         "pg_skipped", "pg_throughput_2", "pg_throughput_4", "pg_throughput_8", "pg_async_throughput_2",
         "pg_pickup", "pg_idle_cpu",
         "pg_claim_flat", "pg_enqueue_python", "pg_enqueue_bulk", "pg_status")


def format_value(row):
    value = row["value"]
    if value is None:
        return "skipped"
    if row["unit"] == "/s":
        return f"{value:,.0f}/s"
    if row["unit"] == "×":
        return f"{value:.2f}×"
    if row["unit"] == "%":
        return f"{value:.2f} %"
    return f"{value:.2f} {row['unit']}" if value < 10 else f"{value:.1f} {row['unit']}"


def verdict(row):
    return {True: "met", False: "MISSED", None: "-"}[row["met"]]


def table(rows, markdown=False):
    """The table as text (or as Markdown for docs/performance.md)."""
    lines = []
    header = ("figure", "value", "target", "ratio", "met")
    body = [(r["figure"], format_value(r), r["target"], "-" if r["ratio"] is None else f"{r['ratio']:.2f}",
             verdict(r)) for r in rows]
    if markdown:
        lines.append("| " + " | ".join(header) + " | note |")
        lines.append("|" + "---|" * (len(header) + 1))
        for row, cells in zip(rows, body):
            lines.append("| " + " | ".join(cells) + f" | {row['note']} |")
        return "\n".join(lines)
    widths = [max(len(h), *(len(c[i]) for c in body)) for i, h in enumerate(header)]
    for cells in (header, *body):
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip())
    return "\n".join(lines)


def peers_table(rows):
    """The peers' figures beside ours, for the same rows."""
    lines = []
    for row in rows:
        for name, result in row["peers"].items():
            if "skipped" in result:
                text = "skipped: " + result["skipped"]
            elif "jobs_per_second" in result:
                text = f"{result['jobs_per_second']:,.0f}/s"
            elif "median_ms" in result:
                text = f"median {result['median_ms']:.1f} ms, idle CPU {result['idle_cpu_percent']:.2f} %"
            elif "idle_cpu_percent" in result:
                text = f"{result['idle_cpu_percent']:.2f} %"
            else:
                text = json.dumps(result)
            lines.append((row["key"], name, text))
    return lines


def _postgres_line(meta):
    server = meta.get("postgres")
    if not server:
        return ""
    return (f" PostgreSQL {server['server_version'].split()[0]} on the same machine ({server['url']}; "
            f"synchronous_commit {server['synchronous_commit']}, fsync {server['fsync']}, autovacuum "
            f"{server['autovacuum']}, shared_buffers {server['shared_buffers']}).")


def markdown(result):
    """The results as Markdown: the machine, the table, the peers (pasted into docs/performance.md)."""
    meta = result["machine"]
    dirty = " (work tree modified)" if meta["work_tree_dirty"] else ""
    lines = [
        f"Measured {meta['finished_at']} at commit {meta['commit']}{dirty}"
        f" in {meta['seconds']:.0f} s: {meta['nproc']} × {meta['cpu_model']}, Python {meta['python']},"
        f" SQLite {meta['sqlite']}, Linux {meta['kernel']}; load average {meta['load_average_at_start'][0]:.2f}"
        f" at the start, {meta['load_average_at_end'][0]:.2f} at the end." + _postgres_line(meta),
        "",
        table(result["figures"], markdown=True),
    ]
    peers = peers_table(result["figures"])
    if peers:
        lines += ["", "| peer | figure | value |", "|---|---|---|"]
        lines += [f"| {name} | {key} | {text} |" for key, name, text in peers]
    return "\n".join(lines) + "\n"
