"""The queues under test, each driven the same way: start N workers, enqueue, wait, read the
start and finish time of every job from the queue itself, stop.

queuectl runs as real `queuectl-worker --count N` processes; Huey as `huey_consumer` with
process workers and tuned polling; RQ as `rq worker` processes against the Redis server on
127.0.0.1:6379. A peer whose package or server is absent raises Unavailable with the reason.
"""

import importlib
import os
import time
import uuid
from datetime import datetime

from common import BIN, HERE, PYTHON, QUEUECTL_WORKER, scratch_dir, start, stop, wait_for

REDIS_URL = os.environ.get("QUEUECTL_BENCH_REDIS", "redis://127.0.0.1:6379/13")
HUEY_POLL = ["-d", "0.001", "-m", "0.01", "-b", "1.05"]  # tuned: 1 ms first poll, at most 10 ms


class Unavailable(Exception):
    """The system cannot be measured here (package or server absent): the reason says why."""


def _epoch(iso):
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


class System:
    """What the benchmarks call on every queue under test."""

    def warm_up(self, timeout=30):
        """One job through the system first: every worker is started and in its loop."""
        job_id = self.enqueue_one("true")
        self.wait_done([job_id], timeout)
        self.times([job_id])


class Queuectl(System):
    """queuectl: `queuectl-worker --count N` on a fresh SQLite file in its own directory, or (backend
    "postgres") on a fresh schema of the bench's PostgreSQL database, dropped at close."""

    name = "queuectl"
    # The same worker with setpriv switched off: PR_SET_PDEATHSIG through the Python preexec_fn, the
    # fallback where setpriv is missing and the only way before it was used (an A/B in the same run).
    PREEXEC_WORKER = ("import queuectl_worker.launch as launch; launch.method = lambda: \"preexec\"; "
                      "from queuectl_worker.main import main; main()")

    def __init__(self, workers, preexec=False, backend="sqlite", concurrency=1):
        from queuectl_core.store import open_store

        self.workers = workers
        self.schema = None
        if backend in ("postgres", "postgres-async"):
            import postgres

            reason = postgres.missing_reason()
            if reason:
                raise Unavailable(reason)
            self.name = f"queuectl-{backend}"
            self.directory = scratch_dir(f"queuectl-{backend}-{workers}w")  # the workers' log
            # postgres-async: every connection with synchronous_commit off, the counterpart of SQLite's
            # default durability (a commit is not waited for on disk; a server crash may lose the last ones).
            self.schema = postgres.Schema(**({"synchronous_commit": "off"} if backend == "postgres-async" else {}))
            self.db = self.schema.url
        else:
            self.directory = scratch_dir(f"queuectl-{workers}w")
            self.db = os.path.join(self.directory, "queue.db")
        self.store = open_store(self.db)
        self.log = open(os.path.join(self.directory, "workers.log"), "wb")
        command = [PYTHON, "-c", self.PREEXEC_WORKER] if preexec else [QUEUECTL_WORKER]
        slots = ["--concurrency", str(concurrency)] if concurrency != 1 else []
        self.process = start([*command, "--count", str(workers), *slots, "--db", self.db], stderr=self.log)
        wait_for(lambda: len(self.store.live_workers()) >= workers or self.process.poll() is not None, 30,
                 what="queuectl workers to register")
        if self.process.poll() is not None:
            raise RuntimeError(f"queuectl-worker exited {self.process.returncode}; see {self.log.name}")
        self.warm_up()

    def worker_pids(self):
        """The supervisor and its workers; on PostgreSQL also the server processes (backends) serving
        their connections, whose CPU an idle worker causes just as well."""
        from common import process_tree

        pids = process_tree(self.process.pid)
        if self.schema is None:
            return pids
        import psutil

        ports = []
        for pid in pids:
            try:
                ports += [c.laddr.port for c in psutil.Process(pid).net_connections(kind="tcp")
                          if c.raddr and c.status == psutil.CONN_ESTABLISHED]
            except psutil.Error:
                pass
        backends = self.store.connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE client_addr IS NOT NULL AND client_port = ANY(%s)",
            (ports,)).fetchall()
        return pids + [row[0] for row in backends]

    def enqueue_many(self, command, count):
        from queuectl_core.validation import check_job

        specs = [(line, check_job({"command": command})) for line in range(1, count + 1)]
        return self.store.enqueue_many(specs)

    def enqueue_one(self, command):
        from queuectl_core.validation import check_job

        return self.store.enqueue(check_job({"command": command}))["id"]

    def wait_done(self, ids, timeout):
        if len(ids) == 1:
            wait_for(lambda: self.store.get_job(ids[0])["state"] == "completed", timeout, 0.005, what="a queuectl job")
            return

        def done():
            counts = self.store.counts()
            return counts["pending"] + counts["processing"] + counts["failed"] == 0

        wait_for(done, timeout, 0.05, what=f"{len(ids)} queuectl jobs")

    def times(self, ids):
        """{id: (started, finished)} in epoch seconds, from each job's history."""
        result = {}
        for job_id in ids:
            run = self.store.get_job(job_id, history=True)["history"][-1]
            result[job_id] = (_epoch(run["started_at"]), _epoch(run["finished_at"]))
        return result

    def last_finish(self, count):
        jobs = self.store.list_jobs(state="completed", limit=count)
        return max(_epoch(job["updated_at"]) for job in jobs)

    def close(self):
        stop(self.process)
        self.store.close()
        self.log.close()
        if self.schema is not None:
            self.schema.drop()


class Huey(System):
    """Huey with SqliteHuey: `huey_consumer -k process -w N` with tuned polling."""

    name = "huey"

    def __init__(self, workers):
        try:
            import huey  # noqa: F401
        except ImportError as error:
            raise Unavailable(f"huey is not installed ({error}); pip install -r benchmarks/requirements.txt") from None
        self.directory = scratch_dir(f"huey-{workers}w")
        self.db = os.path.join(self.directory, "huey.db")
        os.environ["QUEUECTL_BENCH_HUEY_DB"] = self.db
        from peers import huey_app

        self.app = importlib.reload(huey_app)  # a new SqliteHuey on this run's file
        self.log = open(os.path.join(self.directory, "consumer.log"), "wb")
        env = {"PYTHONPATH": HERE, "QUEUECTL_BENCH_HUEY_DB": self.db}
        self.process = start([os.path.join(BIN, "huey_consumer"), "peers.huey_app.huey", "-k", "process",
                              "-w", str(workers), *HUEY_POLL, "-C", "-q"], env=env, stderr=self.log, cwd=HERE)
        self._handles = {}
        self.warm_up()

    def worker_pids(self):
        from common import process_tree

        return process_tree(self.process.pid)

    def enqueue_one(self, command):
        handle = self.app.run_command(command)
        self._handles[handle.id] = handle
        return handle.id

    def enqueue_many(self, command, count):
        return [self.enqueue_one(command) for _ in range(count)]  # Huey has no bulk enqueue

    def wait_done(self, ids, timeout):
        storage = self.app.huey.storage
        if len(ids) == 1:
            handle = self._handles[ids[0]]
            wait_for(lambda: storage.has_data_for_key(handle.id), timeout, 0.005, what="a huey task")
            return
        wait_for(lambda: storage.result_store_size() >= len(ids), timeout, 0.05, what=f"{len(ids)} huey tasks")

    def times(self, ids):
        return {task_id: tuple(self._handles.pop(task_id).get(blocking=True, timeout=10)) for task_id in ids}

    def last_finish(self, ids):
        return max(finished for _, finished in self.times(ids).values())

    def close(self):
        stop(self.process, __import__("signal").SIGINT)
        self.log.close()


class Rq(System):
    """RQ against Redis: N `rq worker` processes (the forking Worker, or SimpleWorker)."""

    def __init__(self, workers, simple=False):
        try:
            import redis
            import rq
        except ImportError as error:
            raise Unavailable(f"rq/redis not installed ({error}); pip install -r benchmarks/requirements.txt") from None
        self.name = "rq-simple" if simple else "rq"
        self.redis = redis.Redis.from_url(REDIS_URL)
        try:
            self.redis.ping()
        except redis.exceptions.ConnectionError as error:
            raise Unavailable(f"no Redis server at {REDIS_URL}: {error}") from None
        self.prefix = f"qbench-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.queue = rq.Queue(self.prefix, connection=self.redis)
        self.directory = scratch_dir(f"rq-{workers}w")
        self.log = open(os.path.join(self.directory, "workers.log"), "wb")
        argv = [os.path.join(BIN, "rq"), "worker", "-u", REDIS_URL, "-q", "--disable-job-desc-logging"]
        if simple:
            argv += ["-w", "rq.worker.SimpleWorker"]
        self.processes = [
            start([*argv, "-n", f"{self.prefix}-{n}", self.prefix], env={"PYTHONPATH": HERE}, stderr=self.log, cwd=HERE)
            for n in range(workers)
        ]
        self._n = 0
        self.warm_up()

    def worker_pids(self):
        from common import process_tree

        return [pid for process in self.processes for pid in process_tree(process.pid)]

    def _job_id(self):
        self._n += 1
        return f"{self.prefix}-{self._n}"

    def enqueue_one(self, command):
        from peers.rq_tasks import run_command

        return self.queue.enqueue(run_command, command, job_id=self._job_id()).id

    def enqueue_many(self, command, count):
        from peers.rq_tasks import run_command

        data = [self.queue.prepare_data(run_command, (command,), job_id=self._job_id()) for _ in range(count)]
        return [job.id for job in self.queue.enqueue_many(data)]

    def wait_done(self, ids, timeout):
        registry = self.queue.finished_job_registry
        before = getattr(self, "_finished", 0)
        wait_for(lambda: registry.count >= before + len(ids), timeout, 0.005 if len(ids) == 1 else 0.05,
                 what=f"{len(ids)} rq jobs")
        self._finished = before + len(ids)

    def times(self, ids):
        from rq.job import Job

        jobs = Job.fetch_many(list(ids), connection=self.redis)
        return {job.id: tuple(job.return_value()) for job in jobs}

    def last_finish(self, ids):
        return max(finished for _, finished in self.times(ids).values())

    def close(self):
        for process in self.processes:
            stop(process)
        self.log.close()
        keys = list(self.redis.scan_iter(f"*{self.prefix}*", count=1000))
        for first in range(0, len(keys), 1000):
            self.redis.delete(*keys[first:first + 1000])
        self.redis.srem("rq:queues", f"rq:queue:{self.prefix}")  # RQ's set of queue names


def make(system, workers):
    """A started system by name: queuectl, queuectl-slots-K (--concurrency K), queuectl-postgres,
    queuectl-postgres-async, queuectl-preexec, huey, rq, rq-simple."""
    if system == "queuectl":
        return Queuectl(workers)
    if system.startswith("queuectl-slots-"):  # queuectl-slots-K: each worker process runs K jobs at once
        return Queuectl(workers, concurrency=int(system.rsplit("-", 1)[1]))
    if system in ("queuectl-postgres", "queuectl-postgres-async"):
        return Queuectl(workers, backend=system.removeprefix("queuectl-"))
    if system == "queuectl-preexec":
        return Queuectl(workers, preexec=True)
    if system == "huey":
        return Huey(workers)
    if system == "rq":
        return Rq(workers)
    if system == "rq-simple":
        return Rq(workers, simple=True)
    raise ValueError(system)


def throughput(system, workers, jobs=2000, timeout=120):
    """Jobs per second from the start of the enqueue to the last job's finish."""
    queue = make(system, workers)
    try:
        cpu = _CpuSplit(queue) if isinstance(queue, Queuectl) else None
        begin = time.time()
        ids = queue.enqueue_many("true", jobs)
        enqueued = time.time()
        queue.wait_done(ids, timeout)
        last = queue.last_finish(jobs if isinstance(queue, Queuectl) else ids)
        result = {"jobs_per_second": jobs / (last - begin), "seconds": last - begin,
                  "enqueue_seconds": enqueued - begin}
        if cpu:
            result["cpu_ms_per_job"] = cpu.per_job(jobs)
        return result
    finally:
        queue.close()


class _CpuSplit:
    """Where a queuectl run's CPU goes, per job: the worker processes themselves, the job processes
    they started and reaped (setpriv + /bin/sh), and, on PostgreSQL, the server backends serving them."""

    def __init__(self, queue):
        from common import process_tree

        self.own = process_tree(queue.process.pid)
        self.backends = [pid for pid in queue.worker_pids() if pid not in self.own]
        self.before = self._read()

    def _read(self):
        import psutil

        found = {"workers": 0.0, "job_processes": 0.0, "server_backends": 0.0}
        for group, pids in (("workers", self.own), ("server_backends", self.backends)):
            for pid in pids:
                try:
                    times = psutil.Process(pid).cpu_times()
                except psutil.Error:
                    continue
                found[group] += times.user + times.system
                if group == "workers":
                    found["job_processes"] += times.children_user + times.children_system
        return found

    def per_job(self, jobs):
        after = self._read()
        return {key: 1000 * (after[key] - self.before[key]) / jobs for key in after}
