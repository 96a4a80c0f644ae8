"""The PostgreSQL server's ceiling (issue 17): claim + complete per second with 1, 4, 16 and 64 concurrent claimers,
for queuectl (one job at a time and in batches of 10) and, on the same server in the same run, PgQueuer (batch 1
and its default 10) and Procrastinate.

    .venv/bin/python benchmarks/ceiling.py [--jobs 4000] [--claimers 1,4,16,64] [--rounds 1] [--systems ...]

Every figure is the queue's own, without shell spawns: no-op jobs, claimed and completed in-process (what each
system runs: benchmarks/ceiling_systems.py). A peer that is not installed is skipped with the reason (`make bench`
installs them into .venv).

64 claimers need more connections than a shared server may give (max_connections is often 100), so the suite
runs its own PostgreSQL 15 cluster (private_pg: initdb into a temporary directory, Unix socket only, stock
settings but max_connections 300 and pg_stat_statements loaded) when it can (root, Debian's server binaries);
else it uses QUEUECTL_BENCH_POSTGRES and leaves out what that server cannot give. Each system and claimer count
gets a fresh database, filled before the clock starts. The claimer counts are the outer loop: the systems at one
count run minutes apart at most, so their ratio is the steadiest figure on a shared machine.

Per job, for every system alike: transactions (pg_stat_database.xact_commit of its database, read-only ones
included, and one per LISTENing connection each time a notification reaches it: PgQueuer's managers listen, and
its trigger notifies on every change of its queue table, hence its transactions growing with the claimers),
statements (pg_stat_statements calls of its database, top level, BEGIN and COMMIT included: about one
round trip each, as none of the three pipelines), the server's CPU (user + system time of the cluster's processes
over the drain, from /proc: private cluster only) and the client's (this process, every claimer in it); and the
statements that took the server's time. queuectl's round trips are also counted in its client.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ceiling_systems  # noqa: E402
import private_pg  # noqa: E402

CLAIMERS = (1, 4, 16, 64)
TOP_STATEMENTS = 6


def _admin(url):
    import psycopg

    return psycopg.connect(url, autocommit=True)


def _with_database(url, name):
    """`url` (postgresql://...) naming the database `name` instead of its own."""
    base, question, query = url.partition("?")
    head, _, _ = base.rpartition("/")
    return f"{head}/{name}{question}{query}"


def _settle():
    time.sleep(0.6)  # a backend's statistics reach pg_stat_database when it ends, about 0.5 s later at most


class Database:
    """A fresh database on the server of `admin_url`, dropped by drop(); its commit and statement counts."""

    def __init__(self, admin_url, name, statements):
        self.admin_url, self.name, self.has_statements = admin_url, name, statements
        with _admin(admin_url) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
            self.oid = admin.execute("SELECT oid FROM pg_database WHERE datname = %s", (name,)).fetchone()[0]
        self.url = _with_database(admin_url, name)

    def analyze(self):
        """Statistics for the filled tables, as autovacuum gives them within a minute or so: without them the
        planner takes the just-filled tables for nearly empty (queuectl's claim then sorted every waiting job:
        1.7-6 ms a claim at 3,000 jobs instead of 0.1-0.2 ms)."""
        with _admin(self.url) as connection:
            connection.execute("ANALYZE")

    def commits(self):
        with _admin(self.admin_url) as admin:
            admin.execute("SELECT pg_stat_clear_snapshot()")
            return admin.execute("SELECT xact_commit FROM pg_stat_database WHERE datid = %s", (self.oid,)).fetchone()[0]

    def reset_statements(self):
        if self.has_statements:
            with _admin(self.admin_url) as admin:
                admin.execute("SELECT pg_stat_statements_reset(0, %s, 0)", (self.oid,))

    def statements(self, jobs):
        """(statements per job, the top statements by the server's time), or (None, []) without the extension."""
        if not self.has_statements:
            return None, []
        with _admin(self.admin_url) as admin:
            total = admin.execute("SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements WHERE dbid = %s",
                                  (self.oid,)).fetchone()[0]
            rows = admin.execute(
                "SELECT calls, total_exec_time, shared_blks_hit + shared_blks_read, query FROM pg_stat_statements"
                " WHERE dbid = %s ORDER BY total_exec_time DESC LIMIT %s", (self.oid, TOP_STATEMENTS)).fetchall()
        # Time in the executor is wall time (lock waits and the CPU shared with every other process included);
        # buffers touched are the work itself, whatever the machine's load.
        top = [{"calls_per_job": round(calls / jobs, 3), "exec_ms_per_job": round(ms / jobs, 4),
                "buffers_per_job": round(blocks / jobs, 1), "query": " ".join(query.split())[:160]}
               for calls, ms, blocks, query in rows]
        return total / jobs, top

    def drop(self):
        with _admin(self.admin_url) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


class Probe:
    """The drain's wall time, this process's CPU time and the server's (the cluster's processes, when its
    postmaster is known), from start() to stop()."""

    def __init__(self, postmaster_pid):
        self.postmaster_pid = postmaster_pid
        self.seconds = self.client_cpu = self.server_cpu = None

    def _server_times(self):
        if self.postmaster_pid is None:
            return {}
        import psutil

        times = {}
        for process in [psutil.Process(self.postmaster_pid), *psutil.Process(self.postmaster_pid).children()]:
            try:
                cpu = process.cpu_times()
                times[process.pid] = cpu.user + cpu.system
            except psutil.Error:
                pass
        return times

    def start(self):
        self._server = self._server_times()
        self._client = time.process_time()
        self._began = time.perf_counter()

    def stop(self):
        self.seconds = time.perf_counter() - self._began
        self.client_cpu = time.process_time() - self._client
        # A backend that began during the drain counts whole; one that ended before stop() is missed (every
        # claimer's connection is still open here).
        after = self._server_times()
        self.server_cpu = sum(cpu - self._server.get(pid, 0.0) for pid, cpu in after.items()) if after else None


def measure(system, admin_url, jobs, claimers, postmaster_pid, statements):
    """One drain of `jobs` no-op jobs by `claimers` claimers of `system`: its figures."""
    _, prepare, drain, _ = ceiling_systems.SYSTEMS[system]
    database = Database(admin_url, f"qceiling_{os.getpid()}", statements)
    try:
        prepare(database.url, jobs)
        database.analyze()
        _settle()
        before = database.commits()
        database.reset_statements()
        probe = Probe(postmaster_pid)
        figures = drain(database.url, jobs, claimers, probe)
        statements_per_job, top = database.statements(jobs)
        _settle()
        figures.update({
            "per_second": jobs / probe.seconds,
            "transactions_per_job": (database.commits() - before) / jobs,
            "statements_per_job": statements_per_job,
            "client_cpu_ms_per_job": 1000 * probe.client_cpu / jobs,
            "server_cpu_ms_per_job": None if probe.server_cpu is None else 1000 * probe.server_cpu / jobs,
            "top_statements": top,
        })
        return figures
    finally:
        database.drop()


def _missing(module):
    if module is None:
        return None
    try:
        __import__(module)
        return None
    except ImportError as error:
        return f"{module} is not installed ({error}); `make bench` installs it"


def run(jobs=4000, claimers=CLAIMERS, rounds=1, systems=ceiling_systems.DEFAULT_SYSTEMS, log=print,
        synchronous_commit="on"):
    """{'results': {system: {claimers: figures (the best round's, every round's per_second in 'rounds') or
    {'skipped': reason}}}, the server used, ...}."""
    cluster = private_pg.start_if_possible(max_connections=300, settings={
        "synchronous_commit": synchronous_commit, "shared_preload_libraries": "'pg_stat_statements'"})
    admin_url = cluster.url if cluster else os.environ.get("QUEUECTL_BENCH_POSTGRES",
                                                           "postgresql://postgres@127.0.0.1:5432/test")
    results = {system: {} for system in systems}
    try:
        with _admin(admin_url) as admin:
            limit = int(admin.execute("SHOW max_connections").fetchone()[0])
            server = admin.execute("SELECT version()").fetchone()[0].split(" on ")[0]
            statements = _statements_available(admin)
        server += (f" (a private cluster, Unix socket, synchronous_commit {synchronous_commit})" if cluster
                   else f" at {admin_url}")
        for count in claimers:
            for system in systems:
                results[system][count] = _best_of(system, count, rounds, admin_url, jobs, limit, cluster,
                                                  statements)
                log(f"ceiling: {system:<22} {count:>3} claimers: {_text(results[system][count])}")
    finally:
        if cluster:
            cluster.stop()
    return {"server": server, "jobs": jobs, "rounds": rounds, "synchronous_commit": synchronous_commit,
            "cores": os.cpu_count(), "load_average_after": os.getloadavg(),
            "systems": {system: ceiling_systems.SYSTEMS[system][3] for system in systems}, "results": results}


def _statements_available(admin):
    try:
        admin.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        admin.execute("SELECT 1 FROM pg_stat_statements LIMIT 1")
        return True
    except Exception:  # not in shared_preload_libraries: statements per job are left out
        return False


def _best_of(system, count, rounds, admin_url, jobs, limit, cluster, statements):
    missing = _missing(ceiling_systems.SYSTEMS[system][0])
    if missing:
        return {"skipped": missing}
    if count + 10 > limit:
        return {"skipped": f"the server allows {limit} connections"}
    best, every = None, []
    for _ in range(rounds):
        try:
            figures = measure(system, admin_url, jobs, count, cluster and cluster.postmaster_pid, statements)
        except Exception as error:  # a peer failing must not sink the suite
            return {"skipped": f"failed: {type(error).__name__}: {str(error)[:200]}"}
        every.append(round(figures["per_second"], 1))
        if best is None or figures["per_second"] > best["per_second"]:
            best = figures
    best["rounds"] = every
    return best


def _text(figures):
    if "skipped" in figures:
        return f"skipped: {figures['skipped']}"
    parts = [f"{figures['per_second']:,.0f}/s", f"{figures['transactions_per_job']:.2f} transactions"]
    if figures.get("statements_per_job") is not None:
        parts.append(f"{figures['statements_per_job']:.2f} statements")
    if "round_trips_per_job" in figures:
        parts.append(f"{figures['round_trips_per_job']:.2f} round trips")
    if figures.get("server_cpu_ms_per_job") is not None:
        parts.append(f"server {figures['server_cpu_ms_per_job']:.3f} ms")
    parts.append(f"client {figures['client_cpu_ms_per_job']:.3f} ms CPU per job")
    return ", ".join(parts)


BLOCKS = (("per_second", "claim + complete per second", "{:,.0f}"),
          ("server_cpu_ms_per_job", "server CPU, ms per job", "{:.3f}"),
          ("client_cpu_ms_per_job", "client CPU, ms per job", "{:.3f}"),
          ("statements_per_job", "statements per job", "{:.2f}"),
          ("transactions_per_job", "transactions per job", "{:.2f}"))


def table(result):
    """The figures as text, a block per figure by system and claimer count, then the ratios of queuectl's best
    row to each peer's best at each count (measured in the same run)."""
    results = result["results"]
    counts = sorted({count for by_count in results.values() for count in by_count}, key=int)
    lines = []
    for key, title, style in BLOCKS:
        lines.append(f"{title:<36}" + "".join(f"{count:>9}" for count in counts))
        for system, by_count in results.items():
            cells = [by_count.get(count, {}).get(key) for count in counts]
            lines.append(f"  {system:<34}" + "".join(
                f"{style.format(cell):>9}" if cell is not None else f"{'-':>9}" for cell in cells))
    ours = [s for s in results if s.startswith("queuectl")]
    for peer in ("pgqueuer", "procrastinate"):
        theirs = [s for s in results if s.startswith(peer)]
        ratios = []
        for count in counts:
            best_ours = max((results[s][count].get("per_second", 0) for s in ours if count in results[s]), default=0)
            best_theirs = max((results[s][count].get("per_second", 0) for s in theirs if count in results[s]),
                              default=0)
            ratios.append(f"{best_ours / best_theirs:>9.2f}" if best_ours and best_theirs else f"{'-':>9}")
        if theirs:
            lines.append(f"{'queuectl best / ' + peer + ' best':<36}" + "".join(ratios))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4000)
    parser.add_argument("--claimers", default=",".join(map(str, CLAIMERS)))
    parser.add_argument("--rounds", type=int, default=1, help="best of this many runs per figure")
    parser.add_argument("--systems", default=",".join(ceiling_systems.DEFAULT_SYSTEMS),
                        help=f"comma-separated, of: {', '.join(ceiling_systems.SYSTEMS)}")
    parser.add_argument("--output", default=None, help="write the figures as JSON here")
    parser.add_argument("--synchronous-commit", default="on", choices=("on", "off"),
                        help="the private cluster's synchronous_commit (on: every commit waits for its fsync)")
    args = parser.parse_args(argv)
    systems = [name.strip() for name in args.systems.split(",") if name.strip()]
    unknown = [name for name in systems if name not in ceiling_systems.SYSTEMS]
    if unknown:
        parser.error(f"unknown system(s): {', '.join(unknown)}; known: {', '.join(ceiling_systems.SYSTEMS)}")
    try:
        claimers = tuple(int(count) for count in args.claimers.split(","))
    except ValueError:
        parser.error(f"--claimers takes comma-separated whole numbers, not {args.claimers!r}")
    result = run(args.jobs, claimers, args.rounds, systems, synchronous_commit=args.synchronous_commit)
    print(table(result))
    if args.output:
        with open(args.output, "w") as handle:
            json.dump(result, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
