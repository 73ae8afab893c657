# Activation journal: `minerva deploy` first writes /minerva.pending, naming the files it is
# about to upload, then uploads every new file as <path>.part and verifies it, then writes the
# list of paths to /minerva.journal.part and renames it to /minerva.journal. That rename is the
# commit point: before it the old installation is whole, after it recover() (run by the deploy
# itself, and at every `import minerva` after a reset) renames each part into place. Renames
# of a part already moved are skipped, so a power cut during recovery is finished by the next
# recovery; without a commit, recovery removes the parts the pending list names. LittleFS
# renames are atomic.
import os
import sys

JOURNAL = "/minerva.journal"
PENDING = "/minerva.pending"
PART = ".part"
# Set in sys.modules by a deploy that imports minerva on the board while its parts wait.
DEPLOYING = "minerva_deploying"


def _lines(path):
    try:
        with open(path) as f:
            return [p for p in f.read().split("\n") if p]
    except OSError:
        return None


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def recover():
    # Finish a committed activation (True), or drop the parts of one that never committed.
    # Spelled out, not imported from .digest: deploy sends this file to the board as a script.
    if sys.implementation.name not in ("micropython", "circuitpython"):
        return False
    paths = _lines(JOURNAL)
    if paths is None:
        if DEPLOYING in sys.modules:
            # A deploy checking its parts imports minerva: its upload is not abandoned.
            return False
        # No commit: the update is dropped, with a journal cut off while it was written.
        _remove(JOURNAL + PART)
        for path in _lines(PENDING) or ():
            _remove(path + PART)
        _remove(PENDING)
        return False
    for path in paths:
        try:
            os.stat(path + PART)
        except OSError:
            continue
        os.rename(path + PART, path)
    os.remove(JOURNAL)
    _remove(PENDING)
    return True
