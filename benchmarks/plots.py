"""The PNG plots of a results JSON: throughput against worker count beside the raw spawn rate,
and claim + complete cost against queue size."""

import os


def draw(result, directory):
    """Write the plots that `result` has data for into `directory`; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = result["series"]
    written = []
    if "throughput_by_workers" in series:
        counts = sorted(int(k) for k in series["throughput_by_workers"])
        ours = [series["throughput_by_workers"][str(c)] for c in counts]
        raw = [series["raw_spawn_by_processes"][str(c)] for c in counts]
        figure, axes = plt.subplots(figsize=(9.5, 4.2))
        axes.plot(counts, raw, "o--", color="grey", label="raw `/bin/sh -c true` spawns, N processes")
        axes.plot(counts, [0.7 * r for r in raw], ":", color="grey", label="target: 0.7 × raw")
        axes.plot(counts, ours, "o-", color="tab:blue", label="queuectl, N workers")
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
        axes.set_xlabel("workers (processes)")
        axes.set_ylabel("jobs (spawns) per second")
        axes.set_ylim(bottom=0)
        axes.set_title(f"No-op jobs, enqueued to all done ({result['machine']['nproc']} cores)")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        figure.tight_layout()
        path = os.path.join(directory, "throughput.png")
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    if "claim_cost_by_queue_size" in series:
        sizes = sorted(int(k) for k in series["claim_cost_by_queue_size"])
        costs = [series["claim_cost_by_queue_size"][str(s)] for s in sizes]
        figure, axes = plt.subplots(figsize=(7, 4.2))
        axes.plot(sizes, costs, "o-", color="tab:blue", label="claim_next + finish_run (median)")
        axes.axhline(costs[0] * 1.5, linestyle=":", color="grey", label="target: ≤ 1.5 × the cost at 1k")
        axes.set_xscale("log")
        axes.set_xlabel("waiting jobs")
        axes.set_ylabel("µs per claim + complete")
        axes.set_ylim(bottom=0)
        axes.set_title("Claim cost against queue size (through SqliteStore)")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
        figure.tight_layout()
        path = os.path.join(directory, "claim_cost.png")
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    return written
