"""Entry point of the ``colorchanger-runner`` command."""

from __future__ import annotations

import click


@click.group()
@click.version_option(package_name="twitchio-colorchanger")
def main() -> None:
    """Run and manage colour-changing Twitch bots."""


@main.command()
def run() -> None:
    """Run one bot per configured user (not built yet)."""
    raise click.ClickException("not yet: the runner arrives with the runner issue")
