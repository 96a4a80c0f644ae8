"""Commands about named queues: list them, limit their concurrency or their rate of starts."""

import click

from . import output
from .context import pass_context


@click.group()
def queue():
    """Named queues: their jobs per state, limits, rates and pauses."""


@queue.command(name="list")
@click.option("--json", "as_json", is_flag=True, help='Print [{"name", "counts", "limit", "rate", "paused"}].')
@pass_context
def list_queues(ctx, as_json):
    """Every queue that holds jobs or has a setting."""
    queues = ctx.store.queue_list()
    if as_json:
        output.print_json(queues)
        return
    if not queues:
        click.echo("No queues.")
        return
    output.print_table(
        ["QUEUE", "PENDING", "PROCESSING", "FAILED", "COMPLETED", "DEAD", "CANCELLED", "LIMIT", "RATE", "PAUSED"],
        [[entry["name"], *(entry["counts"][state] for state in
                           ("pending", "processing", "failed", "completed", "dead", "cancelled")),
          "-" if entry["limit"] is None else entry["limit"], entry["rate"] or "-",
          "yes" if entry["paused"] else "no"] for entry in queues])


@queue.command(name="limit")
@click.argument("name")
@click.argument("limit", metavar="N|none")
@pass_context
def limit_queue(ctx, name, limit):
    """At most N jobs of queue NAME processing at once, across every worker on every host ('none': no limit)."""
    from queuectl_core.validation import check_queue_name

    check_queue_name(name)
    value = None if limit.strip().lower() == "none" else _integer(limit)
    entry = ctx.store.set_queue_limit(name, value, actor=ctx.actor)
    if entry["limit"] is None:
        click.echo(f"Queue {name}: no limit.")
    else:
        click.echo(f"Queue {name}: at most {entry['limit']} job{'s' if entry['limit'] != 1 else ''} processing"
                   " at once.")


@queue.command(name="rate")
@click.argument("name")
@click.argument("rate", metavar="N/PERIOD|none")
@pass_context
def rate_queue(ctx, name, rate):
    """At most N job starts of queue NAME in any window of one PERIOD (s, m or h: 10/m, 100/30s; a sliding
    window), across every worker on every host ('none': no rate)."""
    from queuectl_core.validation import check_queue_name, parse_rate

    check_queue_name(name)
    count, period = (None, None) if rate.strip().lower() == "none" else parse_rate(rate)
    entry = ctx.store.set_queue_rate(name, count, period, actor=ctx.actor)
    if entry["rate"] is None:
        click.echo(f"Queue {name}: no rate limit.")
    else:
        click.echo(f"Queue {name}: at most {entry['rate']} job starts (a sliding window).")


def _integer(text):
    from queuectl_core.validation import check_queue_limit

    try:
        value = int(text.strip())
    except ValueError:
        value = text
    return check_queue_limit(value)
