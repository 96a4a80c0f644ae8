"""Commands about workers: start (runs the worker service), stop, list."""

import os
import sys

import click

from . import output
from .context import pass_context


@click.group()
def worker():
    """Run, stop and list workers."""


@worker.command()
@click.option("--count", "-c", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Worker processes to run.")
@click.option("--concurrency", type=click.IntRange(1, 256), default=None,
              help="Jobs each worker process runs at once, one database connection per process"
                   " (default: $QUEUECTL_CONCURRENCY, else 1).")
@click.option("--timeout", type=click.FloatRange(0, min_open=True),
              help="Kill a run after this many seconds (a job's own timeout wins).")
@click.option("--burst", is_flag=True, help="Exit once no job (of its queues) is pending, processing or failed.")
@click.option("--queue", "queues", multiple=True, metavar="QUEUE",
              help="Claim only from this queue (repeat for several; default: every queue).")
@click.option("--job-dir", metavar="DIR",
              help="The directory jobs start in (default: $QUEUECTL_JOB_DIR, else $HOME); never the database's.")
@pass_context
def start(ctx, count, concurrency, timeout, burst, queues, job_dir):
    """Run COUNT worker processes, each running up to CONCURRENCY jobs at once, in the foreground until
    `worker stop`, SIGTERM or Ctrl-C.

    The first signal lets running jobs finish; a second one kills them and hands them back.
    """
    ctx.need_database("worker start")
    from queuectl_core.secret_env import exec_without_secrets

    # -P: the worker's modules never come from the current directory, where a job may have written files.
    args = [sys.executable, "-P", "-m", "queuectl_worker", "--count", str(count)]
    if concurrency is not None:
        args += ["--concurrency", str(concurrency)]
    if timeout is not None:
        args += ["--timeout", repr(timeout)]
    if burst:
        args.append("--burst")
    if job_dir is not None:
        args += ["--job-dir", job_dir]
    if queues:
        from queuectl_core.validation import check_queue_name

        for queue in queues:
            args += ["--queue", check_queue_name(queue, "--queue")]  # InvalidInput: exit 2
    if ctx.db:
        os.environ["QUEUECTL_DB"] = ctx.db
    # The worker service is its own program: replace this process with it, without the service's secrets (a job
    # can read its worker's /proc/PID/environ).
    exec_without_secrets(args)


@worker.command()
@pass_context
def stop(ctx):
    """Ask every live worker, on every host, to finish its current job and exit."""
    count = ctx.store.request_stop(actor=ctx.actor)
    if count:
        click.echo(f"Asked {count} worker{'s' if count != 1 else ''} to stop;"
                   " each finishes its current job first.")
    else:
        click.echo("No live worker to stop.")


@worker.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of workers.")
@click.option("--all", "every_job", is_flag=True,
              help="List every running job of each worker (without it, past 5: the longest running and '+N more').")
@pass_context
def list_workers(ctx, as_json, every_job):
    """The live workers: id, host, pid, slots (busy/total), last heartbeat and the jobs each one runs, one a line,
    longest running first."""
    workers = ctx.store.live_workers()
    if as_json:
        output.print_json(workers)
    elif workers:
        output.print_workers(workers, every_job)
    else:
        click.echo("No live workers.")
