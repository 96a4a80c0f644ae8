"""The store's settings and worker registry (mixed into Store)."""

import json

from .. import settings as settings_module
from ..timeutil import now_ms, to_iso
from .records import _record


class RegistryMixin:
    """Settings, and the live workers with their heartbeats and stop requests."""

    # ---- settings ----------------------------------------------------------------------

    def get_settings(self):
        """Every setting, stored values over defaults."""
        return self._settings(None)

    def _settings(self, connection):
        return self._settings_of(connection.execute(self.q.settings, {}) if connection else self._read(self.q.settings))

    def _settings_of(self, rows):
        """Every setting, from the settings table's (name, value) `rows` over the defaults."""
        values = settings_module.defaults()
        for name, value in rows:
            if name in values:
                values[name] = json.loads(value)
        self._known_settings = values  # what the state machine decides with (see RunsMixin._decision_settings)
        return values

    def set_setting(self, name, value, actor=None):
        """Check and store one setting; InvalidInput (and nothing stored) when it is bad."""
        return self.set_settings({name: value}, actor=actor)[name]

    def set_settings(self, values, actor=None, now=None):
        """Check every (name, value) of `values`, then store them all in one transaction; return the clean ones.

        A bad one raises InvalidInput and nothing is stored. With `actor`, one audit entry names each setting
        with its value before and after."""
        clean = {name: settings_module.check(name, value) for name, value in values.items()}
        with self._transaction() as connection:
            before = self._settings(connection) if actor is not None else {}
            for name, value in clean.items():
                connection.execute(self.q.set_setting, {"name": name, "value": json.dumps(value)})
            self._audit(connection, actor, "config-set", ",".join(clean),
                        {name: {"from": before.get(name), "to": value} for name, value in clean.items()},
                        now_ms() if now is None else now)
        return clean

    # ---- the worker registry -------------------------------------------------------------

    def register_worker(self, worker_id, host, pid, now=None, concurrency=1):
        """Add a live worker, which runs up to `concurrency` jobs at once, to the registry."""
        now = now_ms() if now is None else now
        with self._transaction() as connection:
            connection.execute(self.q.register_worker, {"worker": worker_id, "host": host, "pid": pid, "now": now,
                                                        "concurrency": concurrency})
        # A heartbeat that finds no row registers it again.
        self._registered()[worker_id] = (host, pid, now, concurrency)

    def unregister_worker(self, worker_id):
        """Remove a worker that exits cleanly."""
        self._registered().pop(worker_id, None)
        with self._transaction() as connection:
            connection.execute(self.q.unregister_worker, {"worker": worker_id})

    def _registered(self):
        """{worker id: (host, pid, started, concurrency)} of the workers this store registered and has not
        unregistered."""
        return self.__dict__.setdefault("_registrations", {})

    def live_workers(self, now=None):
        """Workers that heartbeated within lease_timeout, each with its `concurrency` (slots), the `jobs` it runs
        ([{"id", "started_at"}], longest running first) and, of those, the first as `current_job`."""
        now = now_ms() if now is None else now
        lease_ms = int(self.get_settings()["lease_timeout"] * 1000)
        cursor = self._read(self.q.live_workers, {"since": now - lease_ms})
        workers = [_record(cursor, row) for row in cursor.fetchall()]
        running = {}
        if workers:
            for worker_id, job_id, started_at in self._read(self.q.running_jobs).fetchall():
                running.setdefault(worker_id, []).append({"id": job_id, "started_at": to_iso(started_at)})
        for record in workers:
            record["stop_requested"] = bool(record["stop_requested"])
            record["stats"] = json.loads(record["stats"]) if record["stats"] else None
            record["jobs"] = running.get(record["id"], [])
            first = record["jobs"][0] if record["jobs"] else {"id": None, "started_at": None}
            record["current_job"], record["current_job_started_at"] = first["id"], first["started_at"]
        return workers

    def request_stop(self, now=None, actor=None):
        """Ask every worker alive now to finish its job and exit; return how many were asked.

        The flag is per worker, so workers that start later are not affected."""
        now = now_ms() if now is None else now
        lease_ms = int(self.get_settings()["lease_timeout"] * 1000)
        with self._transaction() as connection:
            asked = connection.execute(self.q.request_stop, {"since": now - lease_ms}).rowcount
            self._audit(connection, actor, "worker-stop", "workers", {"count": asked}, now)
            return asked
