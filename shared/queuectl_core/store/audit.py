"""The audit log: who changed what, written by the store in the transaction of the change (mixed into Store).

The operator's methods (cancel, retries, purges, pause, resume, settings, worker stop, enqueue) take `actor=`: when
given (the CLI's `cli:USER@HOST`, the API's `api:operator`), the method records one entry inside its own
transaction, so an entry exists exactly when its change was committed. Without an actor (workers' own changes,
CLI enqueue, tests) nothing is recorded. Old entries go with the `retention` setting, as finished jobs do.
"""

import json

from ..timeutil import to_iso

DETAILS_TEXT_LIMIT = 500  # characters of a command kept in an entry's details


class AuditMixin:
    """_audit (used by the operator's methods), audit_log, and the retention of old entries."""

    def _audit(self, connection, actor, action, target, details, now, entry=None):
        """Record `action` by `actor` on `target` in the open transaction; return the entry's seq (None without
        an actor). Given the seq of an entry this action recorded in an earlier transaction (a purge goes window by
        window), update that entry's details instead: one action, one entry."""
        if actor is None:
            return None
        text = json.dumps(details or {}, ensure_ascii=False, sort_keys=True)
        if entry is not None:
            connection.execute(self.q.update_audit_details, {"details": text, "seq": entry})
            return entry
        row = connection.execute(self.q.record_audit, {
            "at": now, "actor": actor, "action": action, "target": target, "details": text}).fetchone()
        return row[0]

    def audit_log(self, limit=50, offset=0):
        """The recorded actions, newest first: [{'at', 'actor', 'action', 'target', 'details'}]."""
        cursor = self._read(self.q.audit_entries, {"limit": limit, "offset": offset})
        return [{"at": to_iso(at), "actor": actor, "action": action, "target": target,
                 "details": json.loads(details) if details else {}}
                for at, actor, action, target, details in cursor.fetchall()]

    def _expire_audit(self, before, window=500):
        """Delete up to `window` entries recorded before `before` (ms); a read first, so that the common case takes
        no write lock. Returns how many were deleted."""
        if self._read(self.q.any_old_audit, {"before": before}).fetchone() is None:
            return 0
        with self._transaction() as connection:
            return connection.execute(self.q.delete_old_audit, {"before": before, "window": window}).rowcount


def clipped(text, limit=DETAILS_TEXT_LIMIT):
    """`text` cut to `limit` characters (with '…' when cut), for an entry's details."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
