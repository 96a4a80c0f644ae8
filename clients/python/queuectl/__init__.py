"""queuectl's Python client.

    from queuectl import Queue

    with Queue(db="/var/lib/queuectl/queue.db") as queue:          # or Queue(api="https://...", token="...")
        job = queue.enqueue("make build", max_retries=2)
        [done] = queue.wait([job["id"]], timeout=600)

The same methods and exceptions on the database and through the HTTP API; see Queue.
"""

from .errors import Conflict, Error, InvalidJob, JobNotFound, Timeout, Unauthorized, Unavailable
from .queue import Queue

__all__ = ["Conflict", "Error", "InvalidJob", "JobNotFound", "Queue", "Timeout", "Unauthorized", "Unavailable"]
