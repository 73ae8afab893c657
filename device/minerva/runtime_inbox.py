# Runtime, part: the inbox. Capsules and deltas dropped in <root>/inbox/ are verified
# (staging.py) and staged: the first becomes active, later ones the candidate.
import gc
import os

from .errors import CapsuleError
from .staging import inspect_capsule, newer_or_same


_NO_HEAP = "not enough RAM beside the active model to stage or load the candidate now"


class Inbox:
    def poll(self):
        # Stage what arrived in the inbox; load a staged candidate. Returns the files staged.
        staged = []
        try:
            for name in self.slots.inbox_deltas():
                self._rebuild(name)
            for name in self.slots.inbox_files():
                if self._stage(name):
                    staged.append(name)
            if self.slots.state["candidate"] and self.candidate is None and \
                    self.load_error is None and self.active is not None:
                self._load_candidate()
        except MemoryError:
            # Serving comes first: what did not fit waits (files stay in the inbox or slots,
            # whole, as after a power cut) and the active model keeps answering.
            self._drop_candidate()
            self.load_error = _NO_HEAP
        return staged

    def _stage(self, inbox_name):
        s = self.slots
        st = s.state
        path = s.inbox + "/" + inbox_name
        gc.collect()
        try:
            info = inspect_capsule(path, self.trusted)
        except MemoryError:
            return False  # left in the inbox for a start with more free heap
        except CapsuleError as exc:
            s.refuse(inbox_name, str(exc), self._now())
            self._note("refused %s: %s" % (inbox_name, exc))
            s.save()
            return False
        slot = info["sha256"][:16] + ".cap"
        active = st["active"] and st["info"].get(st["active"])
        if slot in (st["active"], st["candidate"]):
            os.remove(path)
            self._note("%s is already %s" % (inbox_name, "active" if slot == st["active"]
                                             else "the candidate"))
            s.save()
            return False
        if active and info["io"] != active["io"]:
            s.refuse(inbox_name, "its inputs/outputs %s differ from the active model's %s; "
                     "shadow testing compares answers to the same inputs"
                     % (info["io"], active["io"]), self._now())
            self._note("refused %s: different inputs/outputs" % inbox_name)
            s.save()
            return False
        floor = st.get("security_version")
        if floor and not newer_or_same(info["version"], floor) and \
                not self.policy()["allow_downgrade"]:
            s.refuse(inbox_name, "version %s is older than %s, the newest this board has run; "
                     "a downgrade needs rt.set_policy(allow_downgrade=True)"
                     % (info["version"], floor), self._now())
            self._note("refused %s: a downgrade" % inbox_name)
            s.save()
            return False
        if slot in st["retired"]:
            st["retired"].remove(slot)
            s.save()
        s.move_in(inbox_name, slot)
        st["info"][slot] = info
        if st["active"] is None:
            st["active"] = slot
            self._raise_floor(info["version"])
            self._note("installed %s (%s %s) as active" % (inbox_name, info["name"],
                                                          info["version"]))
            s.save()
            self._load_active()
            return True
        old = st["candidate"]
        self._drop_candidate()
        st["candidate"] = slot
        st["counts"] = None
        st["log_from"] = self._log().seq
        s.retire(old)
        self._note("staged %s (%s %s) as candidate%s" % (
            inbox_name, info["name"], info["version"], ", replacing %s" % old if old else ""))
        s.save()
        s.sweep()
        self.load_error = None
        return True

    def _raise_floor(self, version):
        st = self.slots.state
        if not st.get("security_version") or newer_or_same(version, st["security_version"]):
            st["security_version"] = version

    def _rebuild(self, name):
        # A delta in the inbox becomes <name>.cap there, rebuilt from a capsule the board
        # holds; then it is staged like any capsule (checksums, signature, version).
        from .delta import read_header, rebuild

        s = self.slots
        st = s.state
        path = s.inbox + "/" + name
        target = s.inbox + "/" + name[:-len(".delta")] + ".cap"
        gc.collect()
        try:
            with open(path, "rb") as f:
                head = read_header(f, path)
            base = None
            for slot in s.named():
                if (st["info"].get(slot) or {}).get("sha256") == head["base"]:
                    base = slot
            if base is None:
                raise CapsuleError("%s: its base %s is not on this board (active: %s); send "
                                   "the full capsule" % (path, head["base"][:16], st["active"]))
            stat = os.statvfs(self.root)
            rebuild(path, s.path(base), target + ".rebuild", stat[0] * stat[4])
            os.rename(target + ".rebuild", target)
            os.remove(path)
            self._note("rebuilt %s from %s and a delta of %d bytes" % (
                target.split("/")[-1], base, head["ops"]))
        except CapsuleError as exc:
            try:
                os.remove(target + ".rebuild")
            except OSError:
                pass
            s.refuse(name, str(exc), self._now())
            self._note("refused %s: %s" % (name, exc))
            s.save()

