"""`queuectl-worker`: the worker service's entry point (also what `queuectl worker start` runs)."""

import argparse
import logging
import os
import pwd
import sys

from queuectl_core.errors import DatabaseError, DatabaseUnusable
from queuectl_core.location import is_postgres
from queuectl_core.secret_env import exec_without_secrets, has_secrets, take_handed_secrets
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


def _concurrency_from_environment():
    text = os.environ.get("QUEUECTL_CONCURRENCY")
    try:
        return _positive_int(text) if text else 1
    except argparse.ArgumentTypeError as error:
        _refuse(f"QUEUECTL_CONCURRENCY {error}")


def _grace_from_environment():
    text = os.environ.get("QUEUECTL_STOP_GRACE")
    try:
        return _positive_seconds(text) if text else None
    except argparse.ArgumentTypeError as error:
        sys.exit(f"Error: QUEUECTL_STOP_GRACE {error}")


def _refuse(message):
    """A configuration the worker cannot start with: one line, exit 2."""
    print(f"Error: {message}", file=sys.stderr)
    sys.exit(2)


def job_directory(option):
    """Where jobs start: `--job-dir`, else $QUEUECTL_JOB_DIR, else $HOME (as cron does), else the user's home
    directory; as an absolute path. Exits 2 when it is not an existing directory."""
    if option == "":
        _refuse("--job-dir needs a directory")
    sources = (("--job-dir", option), ("QUEUECTL_JOB_DIR", os.environ.get("QUEUECTL_JOB_DIR")),
               ("HOME", os.environ.get("HOME")))  # set but empty counts as unset, as for any variable here
    source, value = next(((name, value) for name, value in sources if value),
                         ("the user's home directory", None))
    if value is None:
        try:
            value = pwd.getpwuid(os.getuid()).pw_dir
        except KeyError:  # a uid without a passwd entry (containers) and no HOME
            _refuse("no job directory: give one with --job-dir DIR or QUEUECTL_JOB_DIR (or set HOME)")
    path = os.path.abspath(os.path.expanduser(value))
    if not os.path.isdir(path):
        _refuse(f"the job directory {path} (from {source}) does not exist or is not a directory;"
                " give an existing one with --job-dir DIR or QUEUECTL_JOB_DIR")
    return path


def refuse_the_database_directory(job_dir, store):
    """Exit 2 when jobs would start in the directory of the SQLite file: `rm -f ./*` in a job would delete the
    queue, and a file a job writes there would sit beside it."""
    if is_postgres(store.location):
        return
    database_dir = os.path.dirname(store.location)
    if os.path.samefile(job_dir, database_dir):
        _refuse(f"the job directory {job_dir} holds the database {os.path.basename(store.location)}: a job could"
                " delete or change the queue there; give the jobs another directory with --job-dir DIR or"
                " QUEUECTL_JOB_DIR")


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
    parser.add_argument("--concurrency", type=_positive_int, default=None,
                        help="jobs each worker process runs at once (default: $QUEUECTL_CONCURRENCY, else 1):"
                             " --count N --concurrency K runs up to N x K jobs on N database connections")
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
    parser.add_argument("--job-dir", default=None,
                        help="the directory jobs start in (default: $QUEUECTL_JOB_DIR, else $HOME); never the"
                             " database's own directory")
    parser.add_argument("--health", action="store_true",
                        help="exit 0 if a worker of this host heartbeated within lease_timeout, else 1")
    return parser.parse_args(argv)


def main(argv=None):
    """Start the supervisor and its workers; exit 0 after a graceful stop."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.concurrency is None:
        args.concurrency = _concurrency_from_environment()
    if not args.health and has_secrets():
        # A job can read /proc/PID/environ of its worker and supervisor: start again without the service's
        # secrets (PGPASSWORD travels outside the environment block). -P: not from the current directory.
        exec_without_secrets([sys.executable, "-P", "-m", "queuectl_worker", *argv])
    take_handed_secrets()
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
        job_dir = job_directory(args.job_dir)
        # Open (and migrate) once before forking, so a bad database is one clear error; a read-only one too (a
        # worker could never record a run), while a full disk is waited for.
        store = open_store(args.db)
        try:
            refuse_the_database_directory(job_dir, store)
            store.check_writable()
        finally:
            store.close()
    except (DatabaseUnusable, DatabaseError) as error:
        print(f"Error: {error}", file=sys.stderr)
        sys.exit(1)
    supervisor = Supervisor(
        args.count,
        lambda: Worker(args.db, timeout=args.timeout, burst=args.burst, stop_grace=args.grace, job_dir=job_dir,
                       queues=args.queues, concurrency=args.concurrency),
    )
    sys.exit(supervisor.run())
