"""`queuectl migrate --to URL`: copy this queue into another database (e.g. SQLite to PostgreSQL)."""

import re

import click

from .context import BadInput, pass_context
from .terminal import visible


@click.command()
@click.option("--to", "target_location", required=True, metavar="URL",
              help="The database to copy into, e.g. postgresql://user@host/db (it must hold no jobs).")
@pass_context
def migrate(ctx, target_location):
    """Copy every job, its history and the settings into another (empty) database.

    Stop the workers first (`queuectl worker stop`); afterwards point QUEUECTL_DB at the new database.
    The source is left as it was.
    """
    ctx.need_database("migrate")
    from queuectl_core.store import is_postgres
    from queuectl_core.store.transfer import copy_queue

    if not (is_postgres(target_location) or target_location.startswith("sqlite://")):
        raise BadInput(f"--to must be a postgresql:// or sqlite:/// URL, got {masked(target_location)!r}")
    source, target = ctx.store, ctx.open(target_location)
    if source.location == target.location:
        raise BadInput("--to names the database being copied")
    copied = copy_queue(source, target)
    counted = [_count(copied["jobs"], "job"), _count(copied["runs"], "run"), _count(copied["settings"], "setting")]
    click.echo(f"Copied {counted[0]}, {counted[1]} and {counted[2]} to {visible(masked(target.location))}.")
    # The URL given to --to, password masked: the terminal, a CI log or `docker compose logs` may be kept.
    click.echo(f"Now point every process at it: set QUEUECTL_DB to the --to URL ({visible(masked(target_location))})")


def _count(number, noun):
    return f"{number} {noun}{'' if number == 1 else 's'}"


_PASSWORD_IN_QUERY = re.compile(r"(?i)([?&]password=)[^&]*")


def masked(url):
    """`url` with its password shown as *** (in the user part and in a `password=` parameter), as the
    store's own messages show it."""
    scheme, separator, rest = url.partition("://")
    if separator:
        address, question, query = rest.partition("?")
        credentials, at, host = address.rpartition("@")  # the last @: a raw @ in a password stays masked
        if at and ":" in credentials:
            address = f"{credentials.split(':', 1)[0]}:***@{host}"
        url = f"{scheme}://{address}{question}{query}"
    return _PASSWORD_IN_QUERY.sub(r"\1***", url)
