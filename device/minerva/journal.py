# Activation journal: `minerva deploy` uploads every new file as <path>.part, verifies it, then
# writes the list of paths to /minerva.journal.part and renames it to /minerva.journal. That
# rename is the commit point: before it the old installation is whole, after it recover()
# (run by the deploy itself, and at every `import minerva` after a reset) renames each part
# into place and removes the journal. Renames of a part already moved are skipped, so a power
# cut during recovery is finished by the next recovery. LittleFS renames are atomic.
import os
import sys

JOURNAL = "/minerva.journal"
PART = ".part"


def recover():
    # Finish a committed activation; True if there was one.
    if sys.implementation.name != "micropython":
        return False
    try:
        with open(JOURNAL) as f:
            paths = f.read().split("\n")
    except OSError:
        # No commit: a journal cut off while it was being written is dropped with the update.
        try:
            os.remove(JOURNAL + PART)
        except OSError:
            pass
        return False
    for path in paths:
        if not path:
            continue
        try:
            os.stat(path + PART)
        except OSError:
            continue
        os.rename(path + PART, path)
    os.remove(JOURNAL)
    return True
