"""Jobs that wait for other jobs (`after`): recording the edges and settling the waiting jobs (mixed into Store).

What a dependency's state means for its dependents is the state machine's rule (lifecycle.dependency_effect,
dependents_state); this module only reads and writes what those rules decide.
"""

from ..errors import BadDependency, InvalidInput
from ..lifecycle import DOOMED, SATISFIED, dependency_effect, dependency_error, dependents_state


class DependenciesMixin:
    """The edges of new jobs, and the fate of the jobs waiting for one that ended."""

    def _add_dependencies(self, connection, waiting, lines, now):
        """Record the edges of new jobs: (line, job id, ids after which it runs) each; `lines` maps the
        ids of this batch to their line. An unknown id is refused; a job can wait only for an earlier
        line (so no cycle can form); a satisfied dependency needs no edge; a doomed one makes the new job
        dead at once, as it would have if it had ended later."""
        for line, job_id, after in waiting:
            where = f"line {line}: " if line is not None else ""
            job_seq = connection.execute(self.q.seq_of, {"id": job_id}).fetchone()[0]
            doomed_by = None
            for dependency in after:
                if dependency == job_id:
                    raise BadDependency(f"{where}after: job '{job_id}' cannot wait for itself")
                if line is not None and lines.get(dependency, 0) >= line:
                    raise InvalidInput(f"{where}after: job '{dependency}' comes on line {lines[dependency]};"
                                       " a job can only wait for jobs enqueued before it")
                found = connection.execute(self.q.dependency, {"id": dependency}).fetchone()
                if found is None:
                    raise BadDependency(f"{where}after: no job with id '{dependency}'")
                dependency_seq, state = found
                effect = dependency_effect(state)
                if effect == SATISFIED:
                    continue
                connection.execute(self.q.add_dependency, {"job": job_seq, "dep": dependency_seq})
                if effect == DOOMED and doomed_by is None:
                    doomed_by = (dependency, state)
            if doomed_by:
                self._doom(connection, job_seq, now, *doomed_by)

    def _doom(self, connection, seq, now, dependency, state):
        """Job `seq` waits for `dependency`, which ended in `state`: it takes the state the rules give it."""
        fate = dependents_state(state)
        rows = connection.execute(self.q.fail_job, {"seq": seq, "now": now, "state": fate,
                                                    "error": dependency_error(dependency, state)}).fetchall()
        for dead_id, on_dead in rows:  # it ended: its hook, in this same transaction
            self._enqueue_hook(connection, dead_id, fate, None, {"on_dead": on_dead}, now)

    def _settle_dependents(self, connection, seq, job_id, state, now):
        """After job `seq` reached `state`: the jobs waiting for it take the state the rules give them (dead when
        it ended badly, naming it), and so on down the chain. Returns how many jobs changed. (A completed job
        frees its dependents' edges by trigger: job_deps_done.)"""
        ended = [(seq, job_id, state)]
        changed = 0
        while ended:
            seq, job_id, state = ended.pop()
            fate = dependents_state(state)
            if fate is None:
                continue
            rows = connection.execute(self.q.fail_dependents, {
                "seq": seq, "now": now, "state": fate, "error": dependency_error(job_id, state)}).fetchall()
            ended.extend((dependent_seq, dependent_id, fate) for dependent_seq, dependent_id, _ in rows)
            changed += len(rows)
            for _, dependent_id, on_dead in rows:  # each one ended: its hook, in this same transaction
                self._enqueue_hook(connection, dependent_id, fate, None, {"on_dead": on_dead}, now)
        return changed
