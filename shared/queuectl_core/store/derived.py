"""Jobs that queuectl makes from others: hooks (on_success, on_dead), reruns, and (see schedules.py) the jobs of
schedules (mixed into Store).

A hook is enqueued inside the transaction that records its parent's end, so that a crash can never lose it (the end
is not recorded either, and the run is handed back) nor make two (the end is recorded once: a second finish of the
same run is fenced off by its lease token). Which end enqueues which hook is the state machine's rule
(lifecycle.hook_for); this module only writes it.
"""

import json
from dataclasses import replace

from ..lifecycle import hook_environment, hook_for
from ..validation import KEYS, check_job
from .records import _new_record, _record

# The keys of a record that `rerun` does not copy: queuectl sets them for each job.
_NOT_COPIED = ("id", "run_at", "delay")


class DerivedMixin:
    """Hooks, reruns, and the insert every job made by queuectl goes through."""

    def _insert_derived(self, connection, spec, now):
        """Insert the job of `spec` (checked; made by queuectl, not typed by a user) inside the open transaction;
        return its record. A dependency (`after`) that no longer exists makes the job dead at once, naming it:
        raising here would fail the parent's end, or a schedule's firing, over and over."""
        row = self._job_row(spec, now, self._default_max_retries(connection))
        while spec.unique_key is not None and not connection.execute(self.q.insert_unique_job, row).rowcount:
            # An unfinished job holds its unique_key (a nightly run still going): that job stands for this one.
            cursor = connection.execute(self.q.holder_of_key, {"unique_key": spec.unique_key})
            holder = cursor.fetchone()
            if holder is not None:  # else (PostgreSQL) it finished since: try again
                return _record(cursor, holder)
        if spec.unique_key is None:
            connection.execute(self.q.insert_job, row)
        self._count_new_jobs(connection, {spec.queue: 1})
        record = _new_record(row)
        if spec.after:
            present = [dependency for dependency in spec.after
                       if connection.execute(self.q.seq_of, {"id": dependency}).fetchone() is not None]
            if len(present) < len(spec.after):
                missing = next(dependency for dependency in spec.after if dependency not in present)
                seq = connection.execute(self.q.seq_of, {"id": row["id"]}).fetchone()[0]
                error = f"dependency '{missing}' does not exist (any more)"
                ended = connection.execute(self.q.fail_job, {"seq": seq, "now": now, "state": "dead",
                                                             "error": error}).fetchall()
                record.update(state="dead", last_error=error)
                for dead_id, on_dead in ended:
                    self._enqueue_hook(connection, dead_id, "dead", None, {"on_dead": on_dead}, now)
            else:
                self._add_dependencies(connection, [(None, row["id"], tuple(present))], {}, now)
        return record

    def _enqueue_hook(self, connection, parent_id, state, exit_code, hooks, now):
        """After job `parent_id` reached `state`: enqueue the hook the rules give for that end, if the job has one.
        `hooks` maps 'on_success' / 'on_dead' to the hook job (a dict, or its JSON text, or None)."""
        key = hook_for(state)
        hook = hooks.get(key) if key else None
        if not hook:
            return None
        value = json.loads(hook) if isinstance(hook, str) else hook
        spec = check_job(value, hooks=False)  # checked when the parent was enqueued: this builds the JobSpec
        env = {**dict(spec.env), **hook_environment(parent_id, state, exit_code)}
        spec = replace(spec, env=tuple(sorted(env.items())), parent_id=parent_id)
        return self._insert_derived(connection, spec, now)["id"]

    def rerun(self, job_id, now=None, actor=None):
        """A new job with the spec of job `job_id` (any state): its command and every key it was enqueued with,
        not its id, history or state. Returns the new record; JobNotFound for an unknown id."""
        # Through enqueue, like any job a user adds: a dependency that no longer exists is refused (BadDependency).
        return self.enqueue(check_job(spec_object(self.get_job(job_id))), now, actor, "rerun", {"rerun_of": job_id})


def spec_object(record):
    """The job object (as enqueue takes it) of a job's record: every job key it has a value for."""
    return {key: record[key] for key in KEYS
            if key not in _NOT_COPIED and key in record and record[key] not in (None, {}, [])}
