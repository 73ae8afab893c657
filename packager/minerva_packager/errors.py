"""The host side's one error family.

A :class:`PackagerError` is a user or environment problem (a bad file, a missing port, a board
that is full). The CLI prints it as ``minerva: <what> (<hint>)`` and exits non-zero; anything
else is a bug and keeps its traceback.
"""


class PackagerError(Exception):
    """A problem the user can fix; ``hint`` says how."""

    def __init__(self, what, hint=None):
        super().__init__(what)
        self.what = what
        self.hint = hint

    def __str__(self):
        return f"{self.what} ({self.hint})" if self.hint else self.what


class Terminated(KeyboardInterrupt):
    """SIGTERM turned into an exception (by a command that installs the handler), so that
    the code it lands in cleans up and the user hears what state things were left in."""


def count(n, noun, plural=None):
    """``"1 file"``, ``"3 files"``: a count with its noun agreeing, for messages."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
