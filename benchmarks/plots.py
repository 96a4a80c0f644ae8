"""The PNG plots of a results JSON: throughput against worker count beside the raw spawn rate (SQLite
and PostgreSQL), and claim + complete cost against queue size (SQLite and PostgreSQL)."""

import os

PG_COLOR = "tab:purple"


def draw(result, directory, prefix=""):
    """Write the plots that `result` has data for into `directory` (file names start with `prefix`);
    return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = result["series"]
    written = []
    if "throughput_by_workers" in series:
        pg = series.get("postgres_throughput_by_workers", {})
        counts = sorted({int(k) for k in series["throughput_by_workers"]} | {int(k) for k in pg})
        figure, axes = plt.subplots(figsize=(9.5, 4.2))
        raw_series = series.get("raw_spawn_by_processes")
        if raw_series:
            raw_counts = sorted(int(k) for k in raw_series)
            raw = [raw_series[str(c)] for c in raw_counts]
            axes.plot(raw_counts, raw, "o--", color="grey", label="raw `/bin/sh -c true` spawns, N processes")
            axes.plot(raw_counts, [0.7 * r for r in raw], ":", color="grey", label="target: 0.7 × raw")
        ours_counts = sorted(int(k) for k in series["throughput_by_workers"])
        axes.plot(ours_counts, [series["throughput_by_workers"][str(c)] for c in ours_counts], "o-",
                  color="tab:blue", label="queuectl on SQLite, N workers")
        if pg:
            pg_counts = sorted(int(k) for k in pg)
            axes.plot(pg_counts, [pg[str(c)] for c in pg_counts], "D-", color=PG_COLOR,
                      label="queuectl on PostgreSQL, N workers (same rounds as SQLite)")
        if series.get("preexec_fallback_2_workers"):
            axes.plot([2], [series["preexec_fallback_2_workers"]], "o", mfc="none", color="tab:blue",
                      label="queuectl, 2 workers, preexec_fn fallback (before)")
        markers = {"huey": ("s", "tab:green"), "rq-simple": ("^", "tab:red"), "rq": ("v", "tab:orange")}
        for name, rate in series.get("peer_throughput_2_workers", {}).items():
            if rate:
                marker, color = markers.get(name, ("x", "black"))
                axes.plot([2], [rate], marker, color=color, label=f"{name}, 2 workers")
        axes.set_xscale("log", base=2)
        axes.set_xticks(counts, [str(c) for c in counts])
        axes.minorticks_off()
        axes.set_xlabel("workers (processes)")
        axes.set_ylabel("jobs (spawns) per second")
        axes.set_ylim(bottom=0)
        axes.set_title(f"No-op jobs, enqueued to all done ({result['machine']['nproc']} cores)")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        figure.tight_layout()
        path = os.path.join(directory, f"{prefix}throughput.png")
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    if "claim_cost_by_queue_size" in series:
        curves = [("SQLite", "claim_cost_by_queue_size", "o-", "tab:blue"),
                  ("PostgreSQL", "postgres_claim_cost_by_queue_size", "D-", PG_COLOR)]
        figure, axes = plt.subplots(figsize=(7.5, 4.2))
        both = "postgres_claim_cost_by_queue_size" in series
        for name, key, style, color in curves:
            if key not in series:
                continue
            sizes = sorted(int(k) for k in series[key])
            costs = [series[key][str(s)] for s in sizes]
            axes.plot(sizes, costs, style, color=color, label=f"{name}: claim_next + finish_run (median)")
            axes.plot([sizes[0], sizes[-1]], [costs[0] * 1.5] * 2, ":", color=color,
                      label=f"{name} target: ≤ 1.5 × its cost at 1k")
        axes.set_xscale("log")
        if both:  # PostgreSQL's commits cost ~10× SQLite's: a log axis keeps both curves readable
            from matplotlib.ticker import NullFormatter

            axes.set_yscale("log")
            low, high = axes.get_ylim()
            ticks = [t for t in (20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000) if low <= t <= high]
            axes.set_yticks(ticks, [f"{t:,}" for t in ticks])
            axes.yaxis.set_minor_formatter(NullFormatter())
        else:
            axes.set_ylim(bottom=0)
        axes.set_xlabel("waiting jobs")
        axes.set_ylabel("µs per claim + complete" + (" (log scale)" if both else ""))
        axes.set_title("Claim cost against queue size (through the store)")
        axes.grid(alpha=0.3, which="both" if both else "major")
        axes.legend(fontsize=8)
        figure.tight_layout()
        path = os.path.join(directory, f"{prefix}claim_cost.png")
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    return written
