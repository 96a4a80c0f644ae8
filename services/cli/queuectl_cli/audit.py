"""`queuectl audit`: the operators' actions (from the CLI or the API), newest first."""

import click

from . import output
from .context import pass_context


@click.command()
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0, 10**12), default=0, help="Skip this many (for paging).")
@click.option("--json", "as_json", is_flag=True,
              help='Print a JSON array of {"at", "actor", "action", "target", "details"}.')
@pass_context
def audit(ctx, limit, offset, as_json):
    """The audit log: who cancelled, retried, purged, paused, resumed, changed a setting, stopped the workers or
    enqueued through the API, and when; newest first. Kept as long as the `retention` setting keeps jobs."""
    entries = ctx.store.audit_log(limit=limit, offset=offset)
    if as_json:
        output.print_json(entries)
    elif not entries:
        click.echo("The audit log is empty." if not offset else "No more entries.")
    else:
        output.print_audit(entries)
        if len(entries) == limit:
            click.echo(f"(latest {offset + 1}-{offset + limit}; use --limit/--offset for more)", err=True)
