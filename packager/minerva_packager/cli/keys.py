"""``minerva keys``, ``minerva sign`` and ``minerva delta``: trust and cost of an update."""

from pathlib import Path

import click

from ..errors import PackagerError
from .board import _PORT, _VIA, _port


@click.group()
def keys():
    """Signing keys: make one, provision a board with its public half."""


@keys.command("new")
@click.argument("name", type=click.Path(dir_okay=False, path_type=Path))
def keys_new(name):
    """Write a new Ed25519 private key to NAME and its public key to NAME.pub."""
    from ..capsule.signing import key_id, load_public_key, new_key

    public = new_key(name)
    click.echo(f"wrote {name} (private: keep it off boards and out of git) and {public} "
               f"(key id {key_id(load_public_key(public)).hex()})")


@keys.command("provision")
@_PORT
@_VIA
@click.option("--replace", is_flag=True, help="Trust only this key from now on, dropping "
              "the keys the board trusted before.")
@click.argument("public_key", type=click.Path(exists=True, dir_okay=False))
def keys_provision(port, via, replace, public_key):
    """Make the board trust PUBLIC_KEY (a .pub file): from then on it stages only capsules
    signed by it."""
    from ..capsule.signing import provision

    kid, dropped = provision(_port(port), public_key, via, replace)
    click.echo(f"the board now trusts key {kid}" + (f"; dropped {', '.join(dropped)}"
                                                   if dropped else ""))


@click.command()
@click.option("--key", "-k", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Private key (from `minerva keys new`).")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Signed capsule to write (default: replace CAPSULE).")
@click.argument("capsule", type=click.Path(exists=True, dir_okay=False))
def sign(key, output, capsule):
    """Sign CAPSULE with KEY (Ed25519 over the capsule's SHA-256)."""
    from ..capsule.container import read_capsule, write_atomic
    from ..capsule.signing import load_private_key, sign_capsule

    data = read_capsule(capsule).raw
    signed = sign_capsule(data, load_private_key(key))
    write_atomic(output or capsule, signed)
    click.echo(f"signed {output or capsule}: sha256 {signed[-32:].hex()}")


@click.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Delta to write (default: NEW with .delta).")
@click.argument("old", type=click.Path(exists=True, dir_okay=False))
@click.argument("new", type=click.Path(exists=True, dir_okay=False))
def delta(output, old, new):
    """Write the delta that turns OLD (a capsule on the board) into NEW."""
    from ..capsule.container import read_capsule, write_atomic
    from ..capsule.delta import apply_delta, delta_summary, make_delta

    old_bytes, new_bytes = read_capsule(old).raw, read_capsule(new).raw
    data = make_delta(old_bytes, new_bytes)
    if apply_delta(old_bytes, data) != new_bytes:
        raise PackagerError("internal error: the delta does not rebuild NEW", "report it")
    output = output or str(Path(new).with_suffix(".delta"))
    write_atomic(output, data)
    s = delta_summary(old_bytes, new_bytes, data)
    click.echo(f"wrote {output}: {s['delta_bytes']} bytes for a {s['capsule_bytes']}-byte "
               f"capsule ({s['copied']} bytes copied from {Path(old).name}, {s['inserted']} "
               "carried); stage it with `minerva deploy --stage`")


COMMANDS = [keys, sign, delta]
