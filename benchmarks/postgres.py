"""PostgreSQL for the benchmarks: is a server there, a schema of our own per queue, seeding big queues.

The server is QUEUECTL_BENCH_POSTGRES (default postgresql://postgres@127.0.0.1:5432/test, the one
the tests use). Every queue the suite measures lives in a new schema `qbench_<pid>_<hex>` of that
database, named in the URL (`?options=-csearch_path%3D<schema>`), and is dropped when the queue is
closed, and at exit at the latest: the suite never touches any other schema.
"""

import atexit
import os
import secrets
import time

URL = os.environ.get("QUEUECTL_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

_schemas = set()  # this process's schemas still to drop
_missing = {}


def missing_reason(url=URL):
    """Why PostgreSQL cannot be measured (psycopg absent, no server answering); None when it can."""
    if url not in _missing:
        try:
            import psycopg

            psycopg.connect(url, connect_timeout=3).close()
            _missing[url] = None
        except Exception as error:  # ImportError or any connection failure
            text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            _missing[url] = f"no PostgreSQL at {_safe(url)}: {text}"
    return _missing[url]


class Schema:
    """A new, empty schema of the bench database; `url` opens the queue in it (with `settings`, e.g.
    synchronous_commit="off", set for every connection made with that URL). drop() removes it."""

    def __init__(self, url=URL, **settings):
        import psycopg

        self.base = url
        self.name = f"qbench_{os.getpid()}_{secrets.token_hex(4)}"
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"CREATE SCHEMA {self.name}")
        _schemas.add((url, self.name))
        separator = "&" if "?" in url else "?"
        options = "%20".join(f"-c{name}%3D{value}" for name, value in {"search_path": self.name, **settings}.items())
        self.url = f"{url}{separator}options={options}"

    def drop(self):
        _drop(self.base, self.name)


def _drop(url, name):
    import psycopg

    if (url, name) not in _schemas:
        return
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    _schemas.discard((url, name))


@atexit.register
def _drop_all():
    for url, name in list(_schemas):
        try:
            _drop(url, name)
        except Exception:  # the server went away: nothing more to do
            pass


def seed_pending(url, count, now_ms, command="true"):
    """Seed `count` pending jobs into the (migrated) queue at `url` with one INSERT … SELECT from
    generate_series (seeding only: every measurement goes through the store), then ANALYZE it, as
    autovacuum would soon after a bulk load (this server may run with autovacuum off).
    Returns (insert seconds, analyze seconds)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        begin = time.perf_counter()
        connection.execute(
            "INSERT INTO jobs (id, command, state, max_retries, priority, run_at, created_at, updated_at)"
            " SELECT 'seed-' || lpad(n::text, 9, '0'), %(command)s, 'pending', 3, 0, %(at)s, %(at)s, %(at)s"
            " FROM generate_series(1, %(count)s) AS n",
            {"command": command, "at": now_ms - 60_000, "count": count})
        # Counted as the store counts new jobs (in a slot of the per-state counters), so status reads them right.
        connection.execute("INSERT INTO job_counts (state, slot, n) VALUES ('pending', 0, %(count)s)"
                           " ON CONFLICT (queue, state, slot) DO UPDATE SET n = job_counts.n + excluded.n",
                           {"count": count})
        inserted = time.perf_counter()
        connection.execute("ANALYZE jobs")
        return inserted - begin, time.perf_counter() - inserted


def server():
    """The server's version and the settings that move the figures (reported with them)."""
    import psycopg

    with psycopg.connect(URL, autocommit=True) as connection:
        found = {name: connection.execute(f"SHOW {name}").fetchone()[0]
                 for name in ("server_version", "synchronous_commit", "fsync", "autovacuum", "shared_buffers")}
    found["url"] = _safe(URL)
    return found


def _safe(url):
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if at and ":" in credentials:
        credentials = credentials.split(":", 1)[0] + ":***"
    return f"{scheme}://{credentials}{at}{host}"
