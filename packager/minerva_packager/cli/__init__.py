"""The ``minerva`` command. Each command only checks its options and calls a library function."""

import sys

import click

from .. import __version__
from ..errors import PackagerError


class _Group(click.Group):
    """Turns a PackagerError into ``minerva: <what> (<hint>)`` and exit status 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except PackagerError as exc:
            click.echo(f"minerva: {exc}", err=True)
            sys.exit(1)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="minerva")
def main():
    """Ship, test and train int8 models on MicroPython boards."""


def _register():
    # Commands live beside the library code they call; one module each.
    from . import board, capsule, keys, plan, shadow

    for module in (capsule, keys, board, plan, shadow):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
