"""The sections that time workers running jobs: throughput by worker count, idle pickup latency."""

from report import _peer, figure, log

PG_WORKERS = (2, 4, 8)
SLOTS = 4  # the throughput row of `--count 2 --concurrency SLOTS` (issue 16)
IDLE_SLOTS = 50  # the idle row of one worker process with that many slots
PEERS = ("huey", "rq-simple", "rq")


def run_throughput(quick, sections, pg):
    """SQLite (and, with `pg`, PostgreSQL) throughput by worker count; with the throughput section also
    the raw spawn rate, the runner alone, the preexec_fn A/B and the peers. SQLite and PostgreSQL run
    in alternating rounds, so their ratio is measured at the same moments."""
    import statistics

    import spawn
    import systems

    base = "throughput" in sections
    jobs = 500 if quick else 2000
    reps = 1 if quick else 3

    cpu = {}  # (system, workers): [CPU ms per job by process group, one per round]

    def measure(system, count):
        result = systems.throughput(system, count, jobs)
        rate = result["jobs_per_second"]
        if "cpu_ms_per_job" in result:
            cpu.setdefault((system, count), []).append(result["cpu_ms_per_job"])
        log(f"{system}, {count} workers, {jobs} jobs: {rate:.0f}/s; CPU ms per job {result.get('cpu_ms_per_job')}")
        return rate

    raw, ours, slotted, pg_rounds, async_rounds = [], [], [], {}, []
    for rep in range(reps):  # interleaved: the machine's limit and queuectl at the same moments
        if base:
            raw.append(spawn.spawn_rate(2, 2.0))
            log(f"raw spawn from 2 processes: {raw[-1]:.0f}/s")
        ours.append(measure("queuectl", 2))
        if base:
            slotted.append(measure(f"queuectl-slots-{SLOTS}", 2))
        if pg:
            pg_rounds.setdefault(2, []).append(measure("queuectl-postgres", 2))
            async_rounds.append(measure("queuectl-postgres-async", 2))
        log(f"(round {rep + 1}/{reps})")
    our_rate = statistics.median(ours)
    by_workers = {"2": our_rate}
    sqlite_rounds = {2: ours}
    raw_by_processes = {}
    if base:
        raw_rate = statistics.median(raw)
        raw_by_processes["2"] = raw_rate
    for count in ((1, 4, 8) if base else (4, 8)):
        if base:
            raw_by_processes[str(count)] = spawn.spawn_rate(count, 1.5)
            log(f"raw spawn from {count}: {raw_by_processes[str(count)]:.0f}/s")
        if pg and count in PG_WORKERS:
            # A B B A: a drift of the machine's load during the four runs hits both backends alike.
            order = ("queuectl", "queuectl-postgres") if quick else \
                ("queuectl", "queuectl-postgres", "queuectl-postgres", "queuectl")
            for system in order:
                found = measure(system, count)
                (pg_rounds if system == "queuectl-postgres" else sqlite_rounds).setdefault(count, []).append(found)
            by_workers[str(count)] = statistics.median(sqlite_rounds[count])
        else:
            by_workers[str(count)] = measure("queuectl", count)
            sqlite_rounds[count] = [by_workers[str(count)]]
    rows, series = [], {"throughput_by_workers": by_workers}
    if base:
        runner_rate = spawn.spawn_rate(2, 2.0, "runner")
        log(f"queuectl's runner spawning alone, 2 processes: {runner_rate:.0f}/s")
        preexec_spawn = spawn.spawn_rate(2, 2.0, "worker")
        preexec = systems.throughput("queuectl-preexec", 2, jobs)["jobs_per_second"]
        log(f"the preexec_fn fallback: spawning alone {preexec_spawn:.0f}/s, 2 workers {preexec:.0f}/s")
        peers = {}
        for name in PEERS:
            result = _peer(systems.throughput, name, 2, jobs)
            if "jobs_per_second" in result:
                result["ratio_to_raw"] = result["jobs_per_second"] / raw_rate
            peers[name] = result
            log(f"peer {name}: {result}")
        ratio = our_rate / raw_rate
        rows += [
            figure("raw_spawn", "raw `/bin/sh -c true` spawns from 2 Python processes", raw_rate, "/s",
                   "the limit", None, note=f"median of {reps}; rounds {', '.join(f'{r:.0f}' for r in raw)}",
                   rounds=raw, runner_spawn_rate=runner_rate),
            figure("throughput", f"no-op jobs (`true`), 2 workers, {jobs} jobs, enqueued to all done", our_rate,
                   "/s", "≥ 0.7 × raw spawn rate", ratio >= 0.7, ratio,
                   note=f"median of {reps}; rounds {', '.join(f'{r:.0f}' for r in ours)}; the runner spawning "
                        f"alone {runner_rate:.0f}/s; with the preexec_fn fallback {preexec:.0f}/s (spawning alone "
                        f"{preexec_spawn:.0f}/s)", peers=peers, rounds=ours, preexec_fallback=preexec,
                   preexec_fallback_spawn_rate=preexec_spawn),
        ]
        slots_rate = statistics.median(slotted)
        slots_ratio = slots_rate / raw_rate
        cpu_one, cpu_slots = _cpu_median(cpu.get(("queuectl", 2))), _cpu_median(cpu.get((f"queuectl-slots-{SLOTS}", 2)))
        rows.append(figure(
            "throughput_slots", f"no-op jobs, 2 worker processes × {SLOTS} slots (--concurrency {SLOTS}), {jobs} jobs",
            slots_rate, "/s", "≥ 0.75 × raw spawn rate", slots_ratio >= 0.75, slots_ratio,
            note=f"median of {reps}; rounds {', '.join(f'{r:.0f}' for r in slotted)}; {slots_rate / our_rate:.2f} × "
                 f"--count 2 alone in the same rounds; worker CPU per job {cpu_slots['workers']:.2f} ms against "
                 f"{cpu_one['workers']:.2f} ms with one slot", rounds=slotted, cpu_ms_per_job=cpu_slots))
        series.update({"raw_spawn_by_processes": raw_by_processes, "preexec_fallback_2_workers": preexec,
                       "peer_throughput_2_workers": {k: v.get("jobs_per_second") for k, v in peers.items()}})
    if pg:
        pg_by_workers = {}
        for count in PG_WORKERS:
            rate, beside = statistics.median(pg_rounds[count]), statistics.median(sqlite_rounds[count])
            pg_by_workers[str(count)] = rate
            how = {1: "one round each", 2: "2 rounds each, A B B A order"}.get(
                len(pg_rounds[count]), f"median of {len(pg_rounds[count])} alternating rounds")
            pg_cpu, sqlite_cpu = _cpu_median(cpu.get(("queuectl-postgres", count))), \
                _cpu_median(cpu.get(("queuectl", count)))
            cpu_note = ""
            if count == 2 and pg_cpu and sqlite_cpu:
                cpu_note = (f"; CPU per job: workers {pg_cpu['workers']:.1f} + job shells {pg_cpu['job_processes']:.1f}"
                            f" + PostgreSQL backends {pg_cpu['server_backends']:.1f} ms (SQLite: "
                            f"{sqlite_cpu['workers']:.1f} + {sqlite_cpu['job_processes']:.1f} ms)")
            rows.append(figure(
                f"pg_throughput_{count}", f"PostgreSQL: no-op jobs, {count} workers, {jobs} jobs, enqueued to all done",
                rate, "/s", "-", None,
                note=f"{rate / beside:.2f} × SQLite ({beside:.0f}/s in the same rounds; round by round "
                     f"{', '.join(f'{p / q:.2f}' for p, q in zip(pg_rounds[count], sqlite_rounds[count]))}); {how}; "
                     f"PostgreSQL {', '.join(f'{r:.0f}' for r in pg_rounds[count])}, SQLite "
                     f"{', '.join(f'{r:.0f}' for r in sqlite_rounds[count])}" + cpu_note,
                rounds=pg_rounds[count], sqlite_rounds=sqlite_rounds[count], ratio_to_sqlite=rate / beside,
                cpu_ms_per_job=pg_cpu, sqlite_cpu_ms_per_job=sqlite_cpu))
        rate, beside = statistics.median(async_rounds), statistics.median(sqlite_rounds[2])
        rows.append(figure(
            "pg_async_throughput_2", f"PostgreSQL with synchronous_commit off: no-op jobs, 2 workers, {jobs} jobs",
            rate, "/s", "-", None,
            note=f"{rate / beside:.2f} × SQLite, {rate / pg_by_workers['2']:.2f} × PostgreSQL with it on, in the same "
                 f"rounds; rounds {', '.join(f'{r:.0f}' for r in async_rounds)}; set per connection in the URL "
                 f"(like SQLite's default durability: a server crash may lose the last commits)",
            rounds=async_rounds, ratio_to_sqlite=rate / beside))
        series["postgres_throughput_by_workers"] = pg_by_workers
        series["postgres_async_throughput_2_workers"] = rate
    return rows, series


def _cpu_median(rounds):
    """The median of each process group's CPU ms per job over rounds (None without rounds)."""
    import statistics

    if not rounds:
        return None
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


def run_latency(quick, sections, pg):
    import latency

    samples = 10 if quick else 25
    ours = latency.pickup("queuectl", samples)  # with `pg` alone too: SQLite's figure beside PostgreSQL's
    log(f"queuectl pickup: {ours}")
    rows = []
    if "latency" in sections:
        peers = {}
        for name in ("huey", "rq-simple"):
            peers[name] = _peer(latency.pickup, name, samples)
            log(f"peer {name} pickup: {peers[name]}")
        slotted = latency.pickup(f"queuectl-slots-{IDLE_SLOTS}", samples)
        log(f"queuectl pickup with --concurrency {IDLE_SLOTS}: {slotted}")
        rows += [
            figure("pickup_slots", f"idle pickup and idle CPU, 1 worker process with --concurrency {IDLE_SLOTS}",
                   slotted["median_ms"], "ms", "≤ 5 ms, CPU < 1 %",
                   slotted["median_ms"] <= 5 and slotted["idle_cpu_percent"] < 1, slotted["median_ms"] / 5,
                   note=f"p90 {slotted['p90_ms']:.1f} ms, {slotted['samples']} jobs; idle CPU "
                        f"{slotted['idle_cpu_percent']:.2f} % over {slotted['idle_cpu_window_seconds']:g} s",
                   **slotted),
        ]
        rows += [
            figure("pickup", "idle pickup, enqueue to start, median (1 worker)", ours["median_ms"], "ms", "≤ 5 ms",
                   ours["median_ms"] <= 5, ours["median_ms"] / 5,
                   note=f"p90 {ours['p90_ms']:.1f} ms, {ours['samples']} jobs", peers=peers, **ours),
            figure("idle_cpu", "idle worker CPU (supervisor + worker, psutil)", ours["idle_cpu_percent"], "%",
                   "< 1 %", ours["idle_cpu_percent"] < 1, ours["idle_cpu_percent"] / 1,
                   note=f"over {ours['idle_cpu_window_seconds']:g} s",
                   peers={k: {"idle_cpu_percent": v.get("idle_cpu_percent"), **({"skipped": v["skipped"]}
                                                                              if "skipped" in v else {})}
                          for k, v in peers.items()}),
        ]
    if pg:
        theirs = latency.pickup("queuectl-postgres", samples)
        log(f"queuectl on PostgreSQL pickup: {theirs}")
        rows += [
            figure("pg_pickup", "PostgreSQL: idle pickup with LISTEN/NOTIFY, enqueue committed to run start, "
                   "median (1 worker)", theirs["after_commit_median_ms"], "ms", "≤ 5 ms",
                   theirs["after_commit_median_ms"] <= 5, theirs["after_commit_median_ms"] / 5,
                   note=f"p90 {theirs['after_commit_p90_ms']:.1f} ms, {theirs['samples']} jobs (whole ms); from the "
                        f"start of the enqueue call (as SQLite's pickup row): median {theirs['median_ms']:.1f} ms, p90 "
                        f"{theirs['p90_ms']:.1f} ms; the call alone (to its commit) "
                        f"{theirs['enqueue_call_ms']:.1f} ms; "
                        f"SQLite (inotify) in the same run: {ours['after_commit_median_ms']:.1f} ms after the commit, "
                        f"{ours['median_ms']:.1f} ms from the call", sqlite=ours, **theirs),
            figure("pg_idle_cpu", "PostgreSQL: idle worker CPU (supervisor + worker + their server backends)",
                   theirs["idle_cpu_percent"], "%", "< 1 %", theirs["idle_cpu_percent"] < 1,
                   theirs["idle_cpu_percent"] / 1,
                   note=f"over {theirs['idle_cpu_window_seconds']:g} s; SQLite {ours['idle_cpu_percent']:.2f} %"),
        ]
    return rows, {}
