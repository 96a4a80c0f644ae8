"""`queuectl config`: the runtime settings stored in the database."""

import click

from . import output
from .context import BadInput, pass_context


@click.group()
def config():
    """Show and change settings (they reach every worker sharing the database)."""


@config.command(name="get")
@click.argument("key", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a flat JSON object.")
@pass_context
def config_get(ctx, key, as_json):
    """Show one setting, or all of them."""
    from queuectl_core.settings import SETTINGS

    values = ctx.store.get_settings()
    if key is not None:
        if key not in SETTINGS:
            raise BadInput(f"unknown setting '{key}' (known: {', '.join(SETTINGS)})")
        values = {key: values[key]}
    if as_json:
        output.print_json(values)
    elif key is not None:
        click.echo(values[key])
    else:
        for name, value in values.items():
            click.echo(f"{name:<15}= {value:<8}  # {SETTINGS[name].help}")


# ignore_unknown_options: a negative VALUE such as -1 is a value to check, not an option.
@config.command(name="set", context_settings={"ignore_unknown_options": True})
@click.argument("key")
@click.argument("value")
@pass_context
def config_set(ctx, key, value):
    """Check and store a setting; a bad value changes nothing."""
    clean = ctx.store.set_setting(key, value, actor=ctx.actor)
    click.echo(f"{key} = {clean}")
