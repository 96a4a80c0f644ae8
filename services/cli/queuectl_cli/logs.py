"""`queuectl logs`: a run's output, or a running job's output as it comes (from any host sharing the database)."""

import sys
import time

import click

from .completion import complete_job_id
from .context import pass_context
from .jobs import existing_id
from .terminal import visible

POLL_SECONDS = 0.25  # workers store new output every 0.5 s: new lines show within about a second
WAITING_STATES = ("pending", "failed")  # the job will run (again): --follow waits for that run


@click.command()
@click.argument("job_id", metavar="ID", shell_complete=complete_job_id)
@click.option("--follow", "-f", is_flag=True,
              help="Stream the output of the running job (or of its next run) until the run ends.")
@click.option("--attempt", type=click.IntRange(1, 10**9), metavar="N",
              help="The output of run N instead of the latest.")
@pass_context
def logs(ctx, job_id, follow, attempt):
    """The output (stdout and stderr, the last 64 KiB) of a job's latest run, or of run N.

    On a terminal, control characters in it are shown as escapes (\\x1b); into a pipe or file it is as stored.
    """
    store = ctx.store
    run = store.run_output(existing_id(job_id), attempt)
    if not follow:
        if run["attempt"] is None:
            click.echo(f"{job_id} has not run yet ({run['state']}).", err=True)
        _write(run["output"])
        return
    if attempt is None and run["state"] in WAITING_STATES:
        # Follow the next run: wait for it to start (or for the job to end without one, e.g. cancelled).
        attempt = run["runs"] + 1
        click.echo(f"Waiting for run {attempt} of {job_id} to start ({run['state']})...", err=True)
        while True:
            run = store.run_output(job_id)
            if run["attempt"] == attempt or run["state"] not in WAITING_STATES:
                break
            time.sleep(POLL_SECONDS)
        if run["attempt"] != attempt:
            click.echo(f"{job_id} ended {run['state']} without running again.", err=True)
            return
    elif attempt is None:
        attempt = run["attempt"]
        if attempt is None:  # ended without ever running
            click.echo(f"{job_id} has not run ({run['state']}).", err=True)
            return
    printed = 0
    while True:
        run = store.run_output(job_id, attempt)
        text, printed = new_output(run, printed)
        _write(text)
        if run["finished_at"] is not None:
            return
        time.sleep(POLL_SECONDS)


def new_output(run, printed):
    """(text not printed yet, the new byte position) of a run whose output was printed up to byte `printed`.

    The database keeps a capped tail starting `output_offset` bytes into the output; when the reader fell
    behind the tail, a marker says how much was skipped."""
    offset, text = run["output_offset"], run["output"]
    if offset and text.startswith("[... "):
        text = text.split("\n", 1)[1] if "\n" in text else ""  # the stored "earlier bytes not kept" line
    data = text.encode("utf-8")
    end = offset + len(data)
    if printed >= end:
        return "", printed
    if printed < offset:
        return f"[... {offset - printed} bytes not kept ...]\n" + text, end
    return data[printed - offset:].decode("utf-8", errors="replace"), end


def _write(text):
    """Write output as stored into a pipe or file (scripts rely on that); on a terminal, with its controls shown
    as escapes so that a job cannot rewrite the operator's screen (its newlines and tabs stay)."""
    if text:
        sys.stdout.write(visible(text, multiline=True) if sys.stdout.isatty() else text)
        sys.stdout.flush()
