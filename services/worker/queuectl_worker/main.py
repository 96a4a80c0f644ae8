"""`queuectl-worker`: the worker service's entry point (also what `queuectl worker start` runs)."""

import argparse
import logging
import os
import sys

from queuectl_core.errors import DatabaseError, DatabaseUnusable
from queuectl_core.store import open_store

from .supervisor import Supervisor
from .worker import Worker, host_name


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"must be an integer from 1 to 256, got {text!r}")
    return value


def _positive_seconds(text):
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
    return value


def _queue_name(text):
    from queuectl_core.errors import InvalidInput
    from queuectl_core.validation import check_queue_name

    try:
        return check_queue_name(text, "--queue")
    except InvalidInput as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _grace_from_environment():
    text = os.environ.get("QUEUECTL_STOP_GRACE")
    try:
        return _positive_seconds(text) if text else None
    except argparse.ArgumentTypeError as error:
        sys.exit(f"Error: QUEUECTL_STOP_GRACE {error}")


def healthy(db_location):
    """True when a worker on this host (in a container: this container) is alive."""
    store = open_store(db_location)
    try:
        host = host_name()
        return any(worker["host"] == host for worker in store.live_workers())
    finally:
        store.close()


def parse_args(argv):
    """The worker's command line."""
    parser = argparse.ArgumentParser(prog="queuectl-worker", description="Run queuectl worker processes.")
    parser.add_argument("--count", type=_positive_int, default=1, help="worker processes to run (default 1)")
    parser.add_argument("--timeout", type=_positive_seconds, default=None,
                        help="kill a run after this many seconds (jobs may set their own timeout)")
    parser.add_argument("--burst", action="store_true",
                        help="exit once no job is pending, processing or failed")
    parser.add_argument("--grace", type=_positive_seconds, default=_grace_from_environment(),
                        help="after SIGTERM/SIGINT, seconds a running job may take before it is killed and"
                             " handed back (default: $QUEUECTL_STOP_GRACE, else no limit)")
    parser.add_argument("--queue", dest="queues", action="append", type=_queue_name, default=None, metavar="QUEUE",
                        help="claim only from this queue (repeatable; default: every queue)")
    parser.add_argument("--db", default=None, help="SQLite file or postgresql:// URL (default: $QUEUECTL_DB)")
    parser.add_argument("--health", action="store_true",
                        help="exit 0 if a worker of this host heartbeated within lease_timeout, else 1")
    return parser.parse_args(argv)


def main(argv=None):
    """Start the supervisor and its workers; exit 0 after a graceful stop."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # The format names no source line: without this, every record walks the stack to find its caller
    # (~5 µs of a no-op job's ~300 µs in the worker).
    logging._srcfile = None
    logging.logThreads = logging.logMultiprocessing = False
    logging.basicConfig(
        level=os.environ.get("QUEUECTL_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.health:
            sys.exit(0 if healthy(args.db) else 1)
        # Open (and migrate) once before forking, so a bad database is one clear error; a read-only one too (a
        # worker could never record a run), while a full disk is waited for.
        store = open_store(args.db)
        try:
            store.check_writable()
        finally:
            store.close()
    except (DatabaseUnusable, DatabaseError) as error:
        print(f"Error: {error}", file=sys.stderr)
        sys.exit(1)
    supervisor = Supervisor(
        args.count, lambda: Worker(args.db, timeout=args.timeout, burst=args.burst, stop_grace=args.grace,
                                   queues=args.queues)
    )
    sys.exit(supervisor.run())
