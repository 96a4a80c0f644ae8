"""Operator commands: cancel, pause, resume, wait and purge."""

import sys

import click
from queuectl_core.lifecycle import ENDED_BADLY, FINISHED_STATES

from . import output
from .completion import complete_job_id
from .context import BadInput, pass_context
from .jobs import existing_id
from .terminal import visible

TIMEOUT_EXIT = 124  # what timeout(1) exits with


def confirm(question, yes):
    """Ask `question` on a terminal unless --yes was given; without a terminal, --yes is required."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise BadInput(f"{question.rstrip('?')}: add --yes to confirm (there is no terminal to ask on)")
    click.confirm(question, default=False, abort=True, err=True)


@click.command()
@click.argument("job_id", metavar="ID", shell_complete=complete_job_id)
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON.")
@pass_context
def cancel(ctx, job_id, as_json):
    """Cancel a job: a pending or failed one at once; a processing one is stopped (its whole process
    tree: TERM, a grace, KILL) by the worker that runs it, within a few seconds. Not retried."""
    record, at_once = ctx.store.cancel(existing_id(job_id), actor=ctx.actor)
    if as_json:
        output.print_json(record)
    elif at_once:
        click.echo(f"{job_id} is cancelled")
    else:
        click.echo(f"{job_id} is running: its worker stops it within a few seconds and records it cancelled"
                   f" (`queuectl wait {job_id}` waits for that)")


@click.command()
@click.option("--queue", metavar="QUEUE", help="Pause only this queue.")
@pass_context
def pause(ctx, queue):
    """Stop every worker from claiming jobs (of QUEUE only, with --queue); running jobs finish. `queuectl resume`
    undoes it."""
    if queue is not None:
        if ctx.store.pause(queue=queue, actor=ctx.actor):
            click.echo(f"Queue {queue} paused: its running jobs finish and no job of it is claimed until"
                       f" `queuectl resume --queue {queue}`.")
        else:
            click.echo(f"Queue {queue} is paused already (since {ctx.store.paused_since(queue)}).")
        return
    if ctx.store.pause(actor=ctx.actor):
        click.echo("Paused: workers finish their running jobs and claim nothing until `queuectl resume`.")
    else:
        click.echo(f"The queue is paused already (since {ctx.store.paused_since()}).")


@click.command()
@click.option("--queue", metavar="QUEUE", help="Resume only this queue (a global pause stays).")
@pass_context
def resume(ctx, queue):
    """Let workers claim jobs again after `queuectl pause` (of QUEUE, after `pause --queue QUEUE`)."""
    if queue is not None:
        if ctx.store.resume(queue=queue, actor=ctx.actor):
            click.echo(f"Queue {queue} resumed: workers claim its jobs again.")
        else:
            click.echo(f"Queue {queue} was not paused.")
        return
    if ctx.store.resume(actor=ctx.actor):
        click.echo("Resumed: workers claim jobs again.")
    else:
        click.echo("The queue was not paused.")


@click.command(name="wait")
@click.argument("job_ids", nargs=-1, required=True, metavar="ID...", shell_complete=complete_job_id)
@click.option("--timeout", type=click.FloatRange(0), help="Give up after this many seconds (exit 124).")
@click.option("--json", "as_json", is_flag=True, help="Print the jobs' records as JSON at the end.")
@pass_context
def wait_for_jobs(ctx, job_ids, timeout, as_json):
    """Wait until the jobs have ended: exit 0 when all completed, 1 when one ended dead or cancelled,
    124 on timeout."""
    from queuectl_core.waiting import wait_for_jobs

    store = ctx.store
    job_ids = list(dict.fromkeys(existing_id(job_id) for job_id in job_ids))
    states = wait_for_jobs(store, job_ids, timeout)
    if unfinished := [job_id for job_id, state in states.items() if state not in FINISHED_STATES]:
        waiting = ", ".join(f"{job_id} ({states[job_id]})" for job_id in unfinished)
        click.echo(f"Error: timed out after {timeout:g}s; still waiting for {waiting}", err=True)
        sys.exit(TIMEOUT_EXIT)
    records = [store.get_job(job_id) for job_id in job_ids]
    if as_json:
        output.print_json(records)
    else:
        for record in records:
            ended_badly = record["state"] in ENDED_BADLY and record["last_error"]
            why = f": {visible(record['last_error'])}" if ended_badly else ""
            click.echo(f"{record['id']} {record['state']}{why}")
    if any(record["state"] in ENDED_BADLY for record in records):
        sys.exit(1)


def older_than_option(function):
    return click.option("--older-than", "older_than", default="0s", show_default=True, metavar="DURATION",
                        help="Only jobs that ended longer ago than this: 30s, 90m, 12h, 7d, 2w or seconds.")(function)


@click.command()
@click.option("--state", "states", multiple=True, required=True, type=click.Choice(FINISHED_STATES),
              help="Delete jobs in this state (repeat for several).")
@older_than_option
@click.option("--dry-run", is_flag=True, help="Only print how many jobs would be deleted.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help='Print {"count": n, "dry_run": bool}.')
@pass_context
def purge(ctx, states, older_than, dry_run, yes, as_json):
    """Delete finished jobs (completed, dead or cancelled) with their history.

    \b
    queuectl purge --state completed --older-than 7d
    """
    purge_jobs(ctx, list(states), older_than, dry_run, yes, as_json)


def purge_jobs(ctx, states, older_than, dry_run, yes, as_json, dead_letters=False):
    from queuectl_core.durations import UNITS, parse_duration

    seconds = parse_duration(older_than, "--older-than")
    age = older_than if older_than[-1:] in UNITS else f"{seconds:g}s"  # as the user wrote it
    store = ctx.store
    count = store.count_finished(states, seconds)
    what = f"{count} {'/'.join(states)} job{'s' if count != 1 else ''}"
    if seconds:
        what += f" that ended more than {age} ago"
    if not dry_run and count:
        confirm(f"Delete {what}, with their history?", yes)
        if dead_letters:  # `dlq purge`: recorded in the audit log as such
            count = store.purge_dead(seconds, actor=ctx.actor)
        else:
            count = store.purge(states, seconds, actor=ctx.actor)
    if as_json:
        output.print_json({"count": count, "dry_run": dry_run})
    elif dry_run:
        click.echo(f"Would delete {what}.")
    elif count:
        click.echo(f"Deleted {count} job{'s' if count != 1 else ''} with their history.")
    else:
        click.echo("Nothing to delete.")
