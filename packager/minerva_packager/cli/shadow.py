"""``minerva shadow``: the Minerva core on a board, from the desktop."""

import json
from pathlib import Path

import click

from ..errors import count
from .board import _PORT, _VIA, _port

_ROOT = click.option("--root", default="/capsules", show_default=True,
                     help="The runtime's folder on the board.")


def _show(st, as_json):
    from ..shadow.remote import describe

    click.echo(json.dumps(st, indent=2) if as_json else "\n".join(describe(st)))


@click.group()
def shadow():
    """Shadow testing on a board: status, promote, reject, rollback, feed, report."""


@shadow.command("status")
@_PORT
@_VIA
@_ROOT
@click.option("--json", "as_json", is_flag=True, help="Print the board's status() as JSON.")
def shadow_status(port, via, root, as_json):
    """Slots, the candidate's agreement so far and the policy's decision."""
    from ..shadow.remote import status

    _show(status(_port(port), via, root), as_json)


def _action(name, doc, **options):
    @shadow.command(name, help=doc)
    @_PORT
    @_VIA
    @_ROOT
    @click.option("--json", "as_json", is_flag=True, help="Print the status after as JSON.")
    def command(port, via, root, as_json, **kwargs):
        from ..shadow.remote import act

        st = act(_port(port), name, via, root, **kwargs)
        _show(st, as_json)
    for option in options.values():
        command = option(command)
    return command


_action("promote", "Make the candidate active; it is on trial from the board's next start "
        "until it has served the policy's confirm_after healthy inferences.",
        force=click.option("--force", is_flag=True, help="Promote even when the policy has "
                           "not decided to."))
_action("reject", "Drop the candidate (its file is removed; the reason is kept).",
        reason=click.option("--reason", default="rejected by the user", show_default=True))
_action("rollback", "Serve the previous capsule again; the current one is dropped.")
_action("confirm", "Confirm a promoted capsule now, ending its trial.")


@shadow.command("feed")
@_PORT
@_VIA
@_ROOT
@click.argument("inputs", type=click.Path(exists=True, dir_okay=False))
def shadow_feed(port, via, root, inputs):
    """Serve INPUTS (.npy or raw .bin samples) with the board's runtime: the active model
    answers, a staged candidate is shadow-tested on each."""
    from ..shadow.remote import describe, feed

    outputs, st = feed(_port(port), inputs, via, root)
    click.echo(f"served {count(len(outputs), 'input')} with the active model")
    click.echo("\n".join(describe(st)))


@shadow.command("report")
@_PORT
@_VIA
@_ROOT
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="HTML report to write (PNG plots beside it).")
@click.option("--export", type=click.Path(file_okay=False, path_type=Path),
              help="Also write each logged disagreeing input here as .npy, for labelling.")
def shadow_report(port, via, root, output, export):
    """Pull the shadow counts and the disagreement log; write an HTML report."""
    from ..shadow.remote import pull
    from ..shadow.report import write_report

    written = write_report(pull(_port(port), via, root), output, export)
    click.echo(f"wrote {written['html']} with {len(written['plots'])} plots")
    if export:
        click.echo(f"exported {len(written['exported'])} disagreeing inputs to {export}")


COMMANDS = [shadow]
