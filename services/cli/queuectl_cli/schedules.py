"""Commands about recurring jobs: `schedule add|list|rm|pause|resume|run`, and `rerun`."""

import click

from . import output
from .completion import complete_job_id
from .context import BadInput, pass_context
from .jobs import existing_id


@click.group()
def schedule():
    """Recurring jobs, fired by the live workers: each slot enqueues exactly one job.

    \b
    queuectl schedule add nightly --cron '0 2 * * *' --timezone Europe/Berlin '{"command": "backup.sh"}'
    queuectl schedule add heartbeat --every 30s '{"command": "curl -fsS https://example.org/ping"}'
    """


@schedule.command(name="add")
@click.argument("name")
@click.argument("job", metavar="JOB_JSON")
@click.option("--cron", metavar="EXPR", help="A five-field cron expression: minute hour day month weekday.")
@click.option("--every", metavar="DURATION", help="An interval of at least 1s: 30s, 5m, 1h, 1d.")
@click.option("--timezone", "--tz", "timezone", metavar="TZ", default="UTC", show_default=True,
              help="The IANA time zone the cron expression follows (with its daylight saving).")
@click.option("--overlap", type=click.Choice(["skip", "allow"]), default="skip", show_default=True,
              help="skip: a slot is skipped while the schedule's previous job is unfinished.")
@click.option("--json", "as_json", is_flag=True, help="Print the schedule's record as JSON.")
@pass_context
def schedule_add(ctx, name, job, cron, every, timezone, overlap, as_json):
    """Add the schedule NAME that enqueues JOB_JSON (a job without id, run_at, delay) at each slot."""
    import json

    from queuectl_core.schedules import check_schedule

    try:
        value = json.loads(job)
    except (ValueError, RecursionError) as error:
        raise BadInput(f"JOB_JSON is not valid JSON: {error}") from None
    if cron is not None and every is not None:
        raise BadInput("give --cron or --every, not both")
    spec = check_schedule(name, cron=cron, every=every, timezone=timezone, overlap=overlap, job=value)
    record = ctx.store.add_schedule(spec, actor=ctx.actor)
    if as_json:
        output.print_json(record)
    else:
        click.echo(f"{name}: next run at {record['next_run_at']}")


@schedule.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of schedule records.")
@pass_context
def schedule_list(ctx, as_json):
    """Every schedule with its next and last run."""
    schedules = ctx.store.list_schedules()
    if as_json:
        output.print_json(schedules)
        return
    if not schedules:
        click.echo("No schedules.")
        return
    rows = [[s["name"], s["cron"] or f"every {s['every']}", s["timezone"], "paused" if s["paused"] else "active",
             s["overlap"], "-" if s["paused"] else s["next_run_at"], s["last_run_at"], s["last_job_id"],
             output.shorten(s["job"]["command"], 30)] for s in schedules]
    output.print_table(["NAME", "WHEN", "TIMEZONE", "STATE", "OVERLAP", "NEXT_RUN_AT", "LAST_RUN_AT", "LAST_JOB",
                        "COMMAND"], rows)


@schedule.command(name="rm")
@click.argument("name")
@pass_context
def schedule_rm(ctx, name):
    """Delete the schedule NAME (the jobs it made stay)."""
    ctx.store.remove_schedule(_name(name), actor=ctx.actor)
    click.echo(f"{name} is removed")


@schedule.command(name="pause")
@click.argument("name")
@pass_context
def schedule_pause(ctx, name):
    """Stop firing NAME until `schedule resume` (its slots meanwhile are not caught up)."""
    ctx.store.pause_schedule(_name(name), actor=ctx.actor)
    click.echo(f"{name} is paused")


@schedule.command(name="resume")
@click.argument("name")
@pass_context
def schedule_resume(ctx, name):
    """Fire NAME again, from its next slot."""
    record = ctx.store.resume_schedule(_name(name), actor=ctx.actor)
    click.echo(f"{name} is active: next run at {record['next_run_at']}")


@schedule.command(name="run")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the new job's record as JSON.")
@pass_context
def schedule_run(ctx, name, as_json):
    """Enqueue one job of NAME now (outside its slots); print its id."""
    record = ctx.store.run_schedule(_name(name), actor=ctx.actor)
    output.print_json(record) if as_json else click.echo(record["id"])


@click.command()
@click.argument("job_id", metavar="ID", shell_complete=complete_job_id)
@click.option("--json", "as_json", is_flag=True, help="Print the new job's record as JSON.")
@pass_context
def rerun(ctx, job_id, as_json):
    """Enqueue a new job with the spec of job ID (any state): not its id, history or state. Prints the new id."""
    record = ctx.store.rerun(existing_id(job_id), actor=ctx.actor)
    output.print_json(record) if as_json else click.echo(record["id"])


def _name(name):
    """`name` if a schedule could hold it; ScheduleNotFound for text no name can hold (undecodable bytes)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        from queuectl_core.errors import ScheduleNotFound

        raise ScheduleNotFound(name) from None
    return name
