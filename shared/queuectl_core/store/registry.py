"""The store's settings and worker registry (mixed into Store)."""

import json

from .. import settings as settings_module
from ..timeutil import now_ms
from .records import _record


class RegistryMixin:
    """Settings, and the live workers with their heartbeats and stop requests."""

    # ---- settings ----------------------------------------------------------------------

    def get_settings(self):
        """Every setting, stored values over defaults."""
        return self._settings(None)

    def _settings(self, connection):
        values = settings_module.defaults()
        rows = connection.execute(self.q.settings, {}) if connection else self._read(self.q.settings)
        for name, value in rows:
            if name in values:
                values[name] = json.loads(value)
        self._known_settings = values  # what the state machine decides with (see RunsMixin._decision_settings)
        return values

    def set_setting(self, name, value):
        """Check and store one setting; InvalidInput (and nothing stored) when it is bad."""
        return self.set_settings({name: value})[name]

    def set_settings(self, values):
        """Check every (name, value) of `values`, then store them all in one transaction; return the clean ones.

        A bad one raises InvalidInput and nothing is stored."""
        clean = {name: settings_module.check(name, value) for name, value in values.items()}
        with self._transaction() as connection:
            for name, value in clean.items():
                connection.execute(self.q.set_setting, {"name": name, "value": json.dumps(value)})
        return clean

    # ---- the worker registry -------------------------------------------------------------

    def register_worker(self, worker_id, host, pid, now=None):
        """Add a live worker to the registry."""
        now = now_ms() if now is None else now
        with self._transaction() as connection:
            connection.execute(self.q.register_worker, {"worker": worker_id, "host": host, "pid": pid, "now": now})
        self._registered()[worker_id] = (host, pid, now)  # a heartbeat that finds no row registers it again

    def unregister_worker(self, worker_id):
        """Remove a worker that exits cleanly."""
        self._registered().pop(worker_id, None)
        with self._transaction() as connection:
            connection.execute(self.q.unregister_worker, {"worker": worker_id})

    def _registered(self):
        """{worker id: (host, pid, started)} of the workers this store registered and has not unregistered."""
        return self.__dict__.setdefault("_registrations", {})

    def live_workers(self, now=None):
        """Workers that heartbeated within lease_timeout, with their current job."""
        now = now_ms() if now is None else now
        lease_ms = int(self.get_settings()["lease_timeout"] * 1000)
        cursor = self._read(self.q.live_workers, {"since": now - lease_ms})
        workers = []
        for row in cursor.fetchall():
            record = _record(cursor, row)
            record["stop_requested"] = bool(record["stop_requested"])
            record["stats"] = json.loads(record["stats"]) if record["stats"] else None
            workers.append(record)
        return workers

    def request_stop(self, now=None):
        """Ask every worker alive now to finish its job and exit; return how many were asked.

        The flag is per worker, so workers that start later are not affected."""
        now = now_ms() if now is None else now
        lease_ms = int(self.get_settings()["lease_timeout"] * 1000)
        with self._transaction() as connection:
            return connection.execute(self.q.request_stop, {"since": now - lease_ms}).rowcount
