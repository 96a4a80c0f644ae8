"""The client through the HTTP API: one request per call (a page per 1,000 jobs listed, a long poll per wait)."""

import time

from .errors import Timeout
from .http import Connection, path

PAGE = 1000  # the API's largest page of jobs
WAIT_SECONDS = 20  # the API's longest wait per request
FINISHED = ("completed", "dead", "cancelled")


class ApiBackend:
    """Queue's methods on the API at `url`."""

    def __init__(self, url, token, timeout):
        self.http = Connection(url, token, timeout=max(timeout, WAIT_SECONDS + 10))

    def close(self):
        self.http.close()

    def enqueue(self, job):
        return self.http.call("POST", "/jobs", body=job)[1]

    def enqueue_many(self, jobs):
        return self.http.call("POST", "/jobs/batch", body=jobs)[1]["ids"]

    def get(self, job_id):
        return self.http.get(path("jobs", job_id))

    def jobs(self, state, queue, tag, limit):
        records = []
        while len(records) < limit:
            size = min(PAGE, limit - len(records))
            page = self.http.get("/jobs", {"state": state, "queue": queue, "tag": tag, "limit": size,
                                           "offset": len(records)})["jobs"]
            records += page
            if len(page) < size:
                break
        return records

    def wait(self, ids, timeout):
        deadline = None if timeout is None else time.monotonic() + timeout
        for job_id in ids:  # an unknown id fails at once, as on the database
            self._state(job_id)
        records = {}
        for job_id in ids:
            while True:
                left = WAIT_SECONDS if deadline is None else max(0, min(WAIT_SECONDS, deadline - time.monotonic()))
                answer = self.http.get(path("jobs", job_id, "wait"), {"timeout": int(left)})
                if answer["done"]:
                    records[job_id] = answer["job"]
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    states = {other: records[other]["state"] if other in records else self._state(other)
                              for other in ids}
                    unfinished = [other for other, state in states.items() if state not in FINISHED]
                    raise Timeout(f"timed out after {timeout:g}s; still waiting for "
                                  + ", ".join(f"{other} ({states[other]})" for other in unfinished), states)
                if left < 1:  # the route waits whole seconds: below one, short pauses instead of a busy loop
                    time.sleep(min(0.25, max(0.0, deadline - time.monotonic())))
        return [records[job_id] for job_id in ids]

    def _state(self, job_id):
        return self.http.get(path("jobs", job_id), {"history_limit": 1})["state"]

    def cancel(self, job_id):
        return self.http.call("POST", path("jobs", job_id, "cancel"))[1]

    def retry(self, job_id):
        return self.http.call("POST", path("jobs", job_id, "retry"))[1]

    def status(self):
        return self.http.get("/stats")
