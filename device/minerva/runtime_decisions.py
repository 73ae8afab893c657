# Runtime, part: the decisions. Promote (on trial), reject, roll back, confirm, and the
# board's override of the shadow policy. Every change is one slot-state write (slots.py).
import gc
import json
import os

from .errors import CapsuleError
from .shadow import Comparator, decide, make_policy
from .slots import TRIALS_THIS_BOOT

POLICY_FILE = "policy.json"


def _default_budget(counts):
    # Twice the slowest latency bin the candidate reached in shadow testing, plus 5 ms for a
    # garbage collection landing in an inference; no budget without samples.
    if not counts or not counts["n"]:
        return 0
    top = 0
    for k, seen in enumerate(counts["lat_candidate"]):
        if seen:
            top = k
    return 2 * (128 << top) + 5000


class Decisions:
    def promote(self, force=False, now=True):
        # The candidate becomes active, on trial; ``now=False`` starts the trial with the
        # first inference after the board's next start (how a desktop command promotes for
        # the application), so a reset before that does not count against it.
        st = self.slots.state
        if not st["candidate"]:
            raise CapsuleError("%s: nothing to promote: no candidate is staged" % self.root)
        policy = self.policy()
        counts = self.comparator.counts if self.comparator else st["counts"]
        metric = self.comparator.metric if self.comparator else "top1"
        verdict, reason = decide(counts, policy, metric) if counts else ("shadow", "no samples")
        if verdict != "promote" and not force:
            raise CapsuleError("%s: not promoting %s: %s; promote(force=True) overrides"
                               % (self.root, st["candidate"], reason))
        budget = int(policy["latency_budget_ms"] * 1000) if policy["latency_budget_ms"] else \
            _default_budget(counts)
        old_previous = st["previous"]
        st["previous"], st["active"], st["candidate"] = st["active"], st["candidate"], None
        self._raise_floor((st["info"].get(st["active"]) or {}).get("version", "?"))
        st["trial"] = {"started": now, "needed": policy["confirm_after"], "budget_us": budget}
        st["last_shadow"] = {"samples": counts["n"] if counts else 0,
                             "agree": counts["agree"] if counts else 0, "decision": verdict,
                             "reason": reason, "forced": verdict != "promote"}
        st["counts"] = None
        self.slots.retire(old_previous)
        self._note("promoted %s (%s); on trial for %d inferences" % (
            st["active"], reason if verdict == "promote" else "forced", policy["confirm_after"]))
        self.slots.save()
        self.slots.sweep()
        if now:
            TRIALS_THIS_BOOT.append(st["active"])
        self._healthy = 0
        self._swap_in(self.candidate)

    def _swap_in(self, model):
        # ``model`` (or, when None, the state's active capsule loaded afresh) serves next.
        old = self.active
        self.active = None
        self.candidate = self.comparator = None
        self.policy_cache = None
        if old is not None:
            old.close()
        gc.collect()
        if model is None:
            self._load_active()
        else:
            self.active = model
            self._new_answer()
        self._decision = ("shadow", "no candidate")

    def reject(self, reason="rejected by the user"):
        st = self.slots.state
        name = st["candidate"]
        if not name:
            raise CapsuleError("%s: nothing to reject: no candidate is staged" % self.root)
        st["candidate"] = None
        st["counts"] = None
        self.slots.retire(name)
        self.slots.record_rejection(name, reason, self._now())
        self._note("rejected candidate %s: %s" % (name, reason))
        self.slots.save()
        self.slots.sweep()
        self._drop_candidate()
        self.policy_cache = None
        self.load_error = None
        self._decision = ("shadow", "no candidate")

    def rollback(self):
        if not self.slots.state["previous"]:
            raise CapsuleError("%s: nothing to roll back to: no previous capsule" % self.root)
        self._revert("rolled back by the user")

    def _revert(self, reason, save=True):
        st = self.slots.state
        bad = st["active"]
        st["active"], st["previous"], st["trial"] = st["previous"], None, None
        self.slots.retire(bad)
        self.slots.record_rejection(bad, reason, self._now())
        self._note("reverted to %s: %s" % (st["active"], reason))
        if not save:
            return
        self.slots.save()
        self.slots.sweep()
        candidate = self.slots.state["candidate"]
        self._swap_in(None)
        if candidate:
            self.poll()

    def confirm(self):
        st = self.slots.state
        if st["trial"] is not None:
            st["trial"] = None
            self._note("confirmed %s by the user" % st["active"])
            self.slots.save()

    def set_policy(self, **settings):
        # The board's override of the candidate's policy, kept in /capsules/policy.json.
        override = dict(self._override)
        override.update(settings)
        make_policy(self.root + "/" + POLICY_FILE, override)
        path = self.root + "/" + POLICY_FILE
        with open(path + ".new", "w") as f:
            f.write(json.dumps(override))
        os.rename(path + ".new", path)
        self._override = override
        self.policy_cache = None
        self.log = None
        policy = self.policy()
        if self.comparator is not None:
            self.comparator = Comparator(self.active.info(), self.candidate.info(), policy,
                                         self.comparator.counts)
        return policy

