# Slots on flash: which capsule is active, candidate and previous. No maths and no models.
#
#   <root>/inbox/*.cap   dropped here by any means; verified and staged by the runtime
#   <root>/slots/*.cap   capsules the state names, each under its SHA-256 (first 16 hex)
#   <root>/rejected/     inbox files that were refused (the reason is in the state)
#   <root>/state.json    the slot state; replaced as state.json.new + rename, so a reset
#                        leaves the old state or the new one, never a mix
#
# Slot changes rename files and rewrite the state; no capsule's bytes are ever copied. A
# capsule moved into slots/ but not yet named by the state (a reset between the two steps)
# is adopted at the next start; one the state retired is removed.
import gc
import json
import os

STATE = "state.json"
_NEW = ".new"
_MAX_EVENTS = 16
_MAX_REJECTED = 8
_MAX_RETIRED = 8
# Names of the capsules whose trial started in this boot; RAM, so a reset empties it.
TRIALS_THIS_BOOT = []


def makedirs(path):
    parts = path.strip("/").split("/")
    for i in range(1, len(parts) + 1):
        try:
            os.mkdir("/" + "/".join(parts[:i]))
        except OSError:
            pass


def listdir(path):
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _fresh():
    return {"seq": 0, "active": None, "candidate": None, "previous": None, "trial": None,
            "info": {}, "counts": None, "events": [], "rejected": [], "retired": [],
            "log_seq": 0}


class Slots:
    def __init__(self, root):
        self.root = root.rstrip("/")
        self.inbox = self.root + "/inbox"
        self.store = self.root + "/slots"
        self.rejected = self.root + "/rejected"
        for path in (self.inbox, self.store, self.rejected):
            makedirs(path)
        self.state = self._read()

    def _read(self):
        path = self.root + "/" + STATE
        remove(path + _NEW)
        try:
            with open(path) as f:
                state = json.loads(f.read())
            if not isinstance(state, dict) or "active" not in state:
                raise ValueError("not a slot state")
        except OSError:
            return _fresh()
        except ValueError:
            state = _fresh()
            self.note(state, "the slot state was unreadable and was rebuilt from slots/")
            return state
        fresh = _fresh()
        for key in fresh:
            state.setdefault(key, fresh[key])
        return state

    def save(self):
        # The commit point of every slot change.
        self.state["seq"] += 1
        path = self.root + "/" + STATE
        # Opening a file on LittleFS takes a block-sized cache in one piece.
        gc.collect()
        with open(path + _NEW, "w") as f:
            json.dump(self.state, f)  # streamed: the state's text is never whole in RAM
        os.rename(path + _NEW, path)

    @staticmethod
    def note(state, text, when=0):
        events = state["events"]
        events.append([state["seq"] + 1, when, text])
        if len(events) > _MAX_EVENTS:
            del events[0]

    def path(self, name):
        return self.store + "/" + name

    def named(self):
        s = self.state
        return [n for n in (s["active"], s["candidate"], s["previous"]) if n]

    def inbox_files(self):
        return [n for n in listdir(self.inbox) if n.endswith(".cap")]

    def inbox_deltas(self):
        # A rebuild a reset cut short leaves <name>.cap.rebuild: dropped, the delta stays.
        for name in listdir(self.inbox):
            if name.endswith(".rebuild"):
                remove(self.inbox + "/" + name)
        return [n for n in listdir(self.inbox) if n.endswith(".delta")]

    def orphans(self):
        # Files in slots/ the state does not name: adopted or removed by the runtime.
        named = self.named()
        out = []
        for name in listdir(self.store):
            if name.endswith(_NEW) or name in self.state["retired"]:
                remove(self.store + "/" + name)
            elif name not in named:
                out.append(name)
        return out

    def move_in(self, inbox_name, slot_name):
        # Inbox file -> slots/ by rename; a capsule already held is just dropped from the
        # inbox (same name means same SHA-256, so the same bytes).
        src = self.inbox + "/" + inbox_name
        if exists(self.path(slot_name)):
            remove(src)
        else:
            os.rename(src, self.path(slot_name))

    def refuse(self, inbox_name, reason, when=0):
        # Keeps the refused file (for the user to look at) out of the inbox, with the reason.
        remove(self.rejected + "/" + inbox_name)
        try:
            os.rename(self.inbox + "/" + inbox_name, self.rejected + "/" + inbox_name)
        except OSError:
            remove(self.inbox + "/" + inbox_name)
        self.record_rejection(inbox_name, reason, when)

    def record_rejection(self, name, reason, when=0):
        rejected = self.state["rejected"]
        rejected.append({"file": name, "reason": reason, "time": when})
        if len(rejected) > _MAX_REJECTED:
            del rejected[0]

    def retire(self, name):
        # Marked in the state being saved, removed after it: a reset in between leaves a
        # file that the next start removes, never a state naming a missing file.
        if not name:
            return
        retired = self.state["retired"]
        if name not in retired:
            retired.append(name)
        if len(retired) > _MAX_RETIRED:
            del retired[0]
        self.state["info"].pop(name, None)

    def sweep(self):
        for name in self.state["retired"]:
            if name not in self.named():
                remove(self.path(name))
