"""Commands about jobs: enqueue, status, list, show and the dead letter queue."""

import sys

import click
from queuectl_core.lifecycle import STATES

from . import output
from .completion import complete_job_id
from .context import BadInput, pass_context
from .views import status_lines

PROGRESS_MIN_JOBS = 10_000  # below this a progress bar would only flicker


@click.command()
@click.argument("job", required=False, metavar="JSON")
@click.option("--file", "-f", "file_name", type=click.Path(dir_okay=False, allow_dash=True),
              help="Enqueue many jobs: one JSON object per line ('-' reads stdin).")
@click.option("--json", "as_json", is_flag=True, help="Print the record (or the ids) as JSON.")
@pass_context
def enqueue(ctx, job, file_name, as_json):
    """Add a job given as a JSON object, or many with '-' / --file (all or nothing).

    \b
    queuectl enqueue '{"id":"job1","command":"echo hello","max_retries":3}'
    queuectl enqueue --file jobs.jsonl
    """
    if job == "-" and file_name is None:
        job, file_name = None, "-"
    if (job is None) == (file_name is None):
        raise click.UsageError("give one JSON job, or '-' / --file FILE for one job per line")
    if file_name is not None:
        _enqueue_many(ctx, file_name, as_json)
        return
    from queuectl_core.validation import parse_job_json

    # A unique_key an unfinished job holds adds nothing and is no error: that job's id (record) is printed.
    record, created = ctx.store.enqueue_or_find(parse_job_json(job))
    if not created:
        click.echo(f"{record['id']} holds unique_key {record['unique_key']!r} already ({record['state']}):"
                   " nothing added", err=True)
    output.print_json(record) if as_json else click.echo(record["id"])


def _enqueue_many(ctx, file_name, as_json):
    from .bulk import collector_paused, parse_lines

    try:
        if file_name == "-":
            raw = sys.stdin.buffer.read()
        else:
            with open(file_name, "rb") as handle:
                raw = handle.read()
    except OSError as error:
        raise BadInput(f"cannot read {file_name}: {error.strerror}") from None
    with collector_paused():
        specs = parse_lines(raw)
        if not specs:
            raise BadInput("no job given: the input has no non-blank line")
        if len(specs) >= PROGRESS_MIN_JOBS and sys.stderr.isatty():
            with click.progressbar(length=len(specs), label="enqueueing", file=sys.stderr) as bar:
                ids = ctx.store.enqueue_many(specs, progress=bar.update)
        else:
            ids = ctx.store.enqueue_many(specs)
    skipped = len(ids.duplicates)
    if as_json:
        output.print_json(ids)
        if skipped:
            click.echo(f"{len(ids)} added, {skipped} skipped as duplicates (unique_key)", err=True)
    elif skipped:
        click.echo(f"{len(ids)} added, {skipped} skipped as duplicates (unique_key)")
    else:
        click.echo(len(ids))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_context
def status(ctx, as_json):
    """Jobs per state and the live workers."""
    summary = ctx.store.status()
    if as_json:
        output.print_json(summary)
        return
    for line in status_lines(summary, ctx.store.paused_since() if summary["paused"] else None):
        click.echo(line)


@click.command(name="list")
@click.option("--state", type=click.Choice(STATES), help="Only jobs in this state.")
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0, 10**12), default=0, help="Skip this many (for paging).")
@click.option("--queue", metavar="QUEUE", help="Only jobs of this queue.")
@click.option("--tag", metavar="TAG", help="Only jobs with this tag.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of job records.")
@pass_context
def list_jobs(ctx, state, limit, offset, queue, tag, as_json):
    """Jobs, newest first."""
    jobs = ctx.store.list_jobs(state=state, limit=limit, offset=offset, queue=queue, tag=tag)
    if as_json:
        output.print_json(jobs)
        return
    if not jobs:
        where = (f" in queue {queue}" if queue else "") + (f" tagged {tag}" if tag else "")
        click.echo(f"No {state + ' ' if state else ''}jobs{where}.")
        return
    output.print_jobs(jobs, with_error=state in ("failed", "dead"))
    if len(jobs) == limit:
        click.echo(f"(first {limit}; use --limit/--offset for more)", err=True)


SHOWN_RUNS = 20  # runs `show` prints by default: a job retried for ever has runs without end


@click.command()
@click.argument("job_id", metavar="ID", shell_complete=complete_job_id)
@click.option("--history-limit", type=click.IntRange(1, 1_000_000), default=SHOWN_RUNS, show_default=True,
              help="Show the latest this many runs.")
@click.option("--all-history", is_flag=True, help="Show every run.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the record with its history (and history_total, the number of runs) as JSON.")
@pass_context
def show(ctx, job_id, history_limit, all_history, as_json):
    """One job with the history of its latest runs, oldest first."""
    job = ctx.store.get_job(existing_id(job_id), history=True, history_limit=None if all_history else history_limit)
    output.print_json(job) if as_json else output.print_job_detail(job)


def existing_id(job_id):
    """`job_id` if it could name a stored job; JobNotFound for text no job id can hold.

    Undecodable bytes on the command line arrive as lone surrogates, which SQLite cannot bind."""
    try:
        job_id.encode("utf-8")
    except UnicodeEncodeError:
        from queuectl_core.errors import JobNotFound

        raise JobNotFound(job_id) from None
    return job_id


@click.group()
def dlq():
    """The dead letter queue: jobs that failed max_retries + 1 times."""


@dlq.command(name="list")
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of job records.")
@pass_context
def dlq_list(ctx, limit, as_json):
    """The dead jobs, newest first."""
    jobs = ctx.store.list_jobs(state="dead", limit=limit)
    if as_json:
        output.print_json(jobs)
    elif not jobs:
        click.echo("The dead letter queue is empty.")
    else:
        output.print_jobs(jobs, with_error=True)


@dlq.command(name="retry")
@click.argument("job_id", metavar="ID", required=False, shell_complete=complete_job_id)
@click.option("--all", "every", is_flag=True, help="Retry every dead job (asks first on a terminal).")
@click.option("--yes", "-y", is_flag=True, help="With --all: do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help='Print the record as JSON (with --all: {"retried": n}).')
@pass_context
def dlq_retry(ctx, job_id, every, yes, as_json):
    """Move a dead job (or, with --all, every dead job) back to pending with attempts 0."""
    if (job_id is None) == (not every):
        raise click.UsageError("give one dead job's ID, or --all for every dead job")
    if every:
        from .control import confirm

        count = ctx.store.counts()["dead"]
        if count:
            confirm(f"Retry all {count} dead job{'s' if count != 1 else ''}?", yes)
            count = ctx.store.retry_all_dead(actor=ctx.actor)
        if as_json:
            output.print_json({"retried": count})
        else:
            click.echo(f"{count} dead job{'s are' if count != 1 else ' is'} pending again (attempts reset to 0)")
        return
    record = ctx.store.retry_dead(existing_id(job_id), actor=ctx.actor)
    if as_json:
        output.print_json(record)
    else:
        click.echo(f"{job_id} is pending again (attempts reset to 0)")


@dlq.command(name="purge")
@click.option("--older-than", "older_than", default="0s", show_default=True, metavar="DURATION",
              help="Only jobs that died longer ago than this: 30s, 90m, 12h, 7d, 2w or seconds.")
@click.option("--dry-run", is_flag=True, help="Only print how many jobs would be deleted.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help='Print {"count": n, "dry_run": bool}.')
@pass_context
def dlq_purge(ctx, older_than, dry_run, yes, as_json):
    """Delete the dead jobs with their history (asks first on a terminal)."""
    from .control import purge_jobs

    purge_jobs(ctx, ["dead"], older_than, dry_run, yes, as_json, dead_letters=True)
