"""Deleting finished jobs: purge on request, and the `retention` setting's sweep (mixed into Store)."""

from ..errors import InvalidInput
from ..lifecycle import FINISHED_STATES, RETENTION_STATES
from ..timeutil import now_ms

_LAST_SEQ = 2**62  # above every seq: the end of the last window


class CleanupMixin:
    """count_finished, purge and apply_retention."""

    def count_finished(self, states, older_than_seconds=0, now=None):
        """How many jobs in `states` (of FINISHED_STATES) last changed more than `older_than_seconds` ago."""
        now = now_ms() if now is None else now
        before = now - int(older_than_seconds * 1000)
        return sum(self._read(self.q.count_finished, {"state": state, "before": before}).fetchone()[0]
                   for state in _finished(states))

    def purge(self, states, older_than_seconds=0, now=None, window=1000, actor=None):
        """Delete the jobs in `states` (of FINISHED_STATES) that last changed more than `older_than_seconds`
        ago, with their history; one transaction per `window` jobs of a state (workers keep claiming in
        between). Returns how many. With `actor`, one audit entry, recorded by the first transaction and
        brought up to date by each one after it (its count is what was deleted)."""
        states = _finished(states)
        details = {"states": states, "older_than_seconds": older_than_seconds}
        return self._purge(states, older_than_seconds, now, window, actor, "purge", ",".join(states), details)

    def purge_dead(self, older_than_seconds=0, now=None, window=1000, actor=None):
        """purge(["dead"], ...): the dead letter queue's purge (`dlq purge`), recorded as such."""
        details = {"older_than_seconds": older_than_seconds}
        return self._purge(["dead"], older_than_seconds, now, window, actor, "dlq-purge", "dlq", details)

    def _purge(self, states, older_than_seconds, now, window, actor, action, target, details):
        now = now_ms() if now is None else now
        before = now - int(older_than_seconds * 1000)
        deleted = 0
        entry = None
        for state in states:
            after = 0
            while True:
                upto = self._window_end(state, after, window)
                with self._transaction() as connection:
                    deleted += connection.execute(self.q.delete_finished_in, {
                        "state": state, "after": after, "upto": upto or _LAST_SEQ, "before": before}).rowcount
                    entry = self._audit(connection, actor, action, target, {**details, "count": deleted}, now,
                                        entry)
                if upto is None:
                    break
                after = upto
        return deleted

    def apply_retention(self, settings, now=None, window=500):
        """Delete the completed and cancelled jobs older than the `retention` setting (0: keep them) among the
        next `window` jobs of each state, sweeping on from call to call (back to the start after the end):
        what workers call with their heartbeat, so an old job goes within one sweep. Audit entries older than
        the setting go too (up to `window` per call). A read first, so that the common case (nothing old
        enough) takes no write lock. Returns how many jobs were deleted."""
        seconds = settings.get("retention") or 0
        if seconds <= 0:
            return 0
        now = now_ms() if now is None else now
        before = now - int(seconds * 1000)
        cursors = self.__dict__.setdefault("_retention_cursors", {})
        deleted = 0
        for state in RETENTION_STATES:
            after = cursors.get(state, 0)
            upto = self._window_end(state, after, window)
            bounds = {"state": state, "after": after, "upto": upto or _LAST_SEQ, "before": before}
            if self._read(self.q.any_finished_in, bounds).fetchone():
                with self._transaction() as connection:
                    deleted += connection.execute(self.q.delete_finished_in, bounds).rowcount
            cursors[state] = upto or 0
        self._expire_audit(before, window)
        return deleted

    def _window_end(self, state, after, window):
        """The seq of the `window`-th job of `state` after seq `after` (None: fewer are left)."""
        row = self._read(self.q.window_end, {"state": state, "after": after, "skip": window - 1}).fetchone()
        return None if row is None else row[0]


def _finished(states):
    """`states` checked: only finished jobs may be deleted."""
    states = list(dict.fromkeys(states))
    wrong = [state for state in states if state not in FINISHED_STATES]
    if wrong or not states:
        raise InvalidInput(f"only finished jobs can be purged: state must be one of {', '.join(FINISHED_STATES)},"
                           f" got {wrong[0] if wrong else 'none'!r}")
    return states
