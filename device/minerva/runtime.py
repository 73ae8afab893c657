# minerva.Runtime: the active model answers; a staged candidate runs beside it on the same
# inputs (shadow testing) until the policy, or the user, promotes or rejects it. A promoted
# capsule is on trial until it has served `confirm_after` healthy inferences; a reset after it
# began serving, or a failure, before that reverts to the previous capsule (MCUboot's
# test-then-confirm).
#
#   rt = minerva.Runtime()          # /capsules: inbox/, slots/, state.json, log/
#   y = rt.infer(x)                 # the active model's answer; a buffer reused by the next call
#   rt.status(); rt.promote(); rt.reject(); rt.rollback(); rt.poll()
import gc
import hashlib
import json
import os
import time

from .errors import CapsuleError, OutOfMemoryError
from .graph import DTYPE_NAMES
from .memory import new_buffer
from .model import load
from .ringlog import RingLog
from .shadow import Comparator, decide, make_policy, wilson
from .slots import TRIALS_THIS_BOOT, Slots
from .staging import KEYS, inspect_capsule, newer_or_same, read_trusted_keys

POLICY_FILE = "policy.json"

if hasattr(time, "ticks_us"):
    _ticks = time.ticks_us
    _elapsed = time.ticks_diff
else:  # CPython
    def _ticks():
        return time.perf_counter_ns() // 1000

    def _elapsed(end, start):
        return end - start


class _Slicer:
    def __getitem__(self, index):
        return index


# `a[:] = b` makes a slice object per call on MicroPython; this one is made once, so serving
# without a candidate allocates nothing.
_WHOLE = _Slicer()[:]


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


class Runtime:
    def __init__(self, root="/capsules", kernels=None, policy=None, keys=KEYS):
        self.root = root.rstrip("/")
        self.kernels = kernels
        # Public keys provisioned on the board: once there is one, only its signatures pass.
        self.trusted = read_trusted_keys(keys)
        self.slots = Slots(self.root)
        self.active = self.candidate = self.comparator = self.log = None
        self.load_error = None
        self._answer = None
        self._healthy = self._calls = self._shadow_us = 0
        self._started = _ticks()
        self._decision = ("shadow", "no candidate")
        self.policy_cache = None
        self._override = self._read_override()
        if policy:
            self._override.update(policy)
        self._recover()
        self._load_active()
        self.poll()

    # -- start-up -------------------------------------------------------------------------
    def _read_override(self):
        try:
            with open(self.root + "/" + POLICY_FILE) as f:
                return json.loads(f.read())
        except (OSError, ValueError):
            return {}

    def _now(self):
        return int(time.time())

    def _note(self, text):
        self.slots.note(self.slots.state, text, self._now())

    def _recover(self):
        s = self.slots
        st = s.state
        changed = False
        for name in s.orphans():
            # Moved into slots/ by a staging that a reset cut short: finish it.
            try:
                info = inspect_capsule(s.path(name))
            except CapsuleError:
                info = None
            if info is not None and st["active"] is None:
                st["active"] = name
            elif info is not None and st["candidate"] is None:
                st["candidate"] = name
                st["counts"] = None
            else:
                os.remove(s.path(name))
                continue
            st["info"][name] = info
            self._note("adopted %s (%s), staged before a reset" % (name, info["name"]))
            changed = True
        trial = st["trial"]
        if trial is not None and trial["started"] and st["active"] not in TRIALS_THIS_BOOT:
            # It served on trial in an earlier boot and was never confirmed.
            self._revert("a reset came before %s was confirmed" % st["active"], save=False)
            changed = True
        if changed:
            s.save()
        s.sweep()

    def _load_active(self):
        st = self.slots.state
        while st["active"]:
            try:
                self.active = self._load_fitting(self.slots.path(st["active"]), None)
                break
            except OutOfMemoryError:
                raise
            except CapsuleError as exc:
                # Only a verified capsule serves: fall back to the previous one.
                bad = st["active"]
                st["active"], st["previous"], st["trial"] = st["previous"], None, None
                self.slots.retire(bad)
                self.slots.record_rejection(bad, "failed verification at start-up: %s"
                                            % exc, self._now())
                self._note("%s failed verification; serving %s" % (bad, st["active"]))
                self.slots.save()
                self.slots.sweep()
        self._new_answer()

    def _load_fitting(self, path, arena):
        # As planned, else with every filter paged from flash; the second refusal is raised.
        try:
            return load(path, self.kernels, None, arena)
        except OutOfMemoryError:
            gc.collect()
        return load(path, self.kernels, True, arena)

    def _new_answer(self):
        if self.active is None:
            self._answer = self._answer_view = None
            return
        out = self.active.info()["outputs"][0]
        self._answer = new_buffer(DTYPE_NAMES.index(out["dtype"]), len(self.active.outputs[0])
                                  * (4 if out["dtype"] in ("float32", "int32") else
                                     2 if out["dtype"] == "int16" else 1))
        # Copied into through a view: CPython's array takes only an array into a slice.
        self._answer_view = memoryview(self._answer)

    # -- staging --------------------------------------------------------------------------
    def poll(self):
        # Stage what arrived in the inbox; load a staged candidate. Returns the files staged.
        staged = []
        for name in self.slots.inbox_deltas():
            self._rebuild(name)
        for name in self.slots.inbox_files():
            if self._stage(name):
                staged.append(name)
        if self.slots.state["candidate"] and self.candidate is None and \
                self.load_error is None and self.active is not None:
            self._load_candidate()
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

    def _log(self):
        if self.log is None:
            gc.collect()  # LittleFS takes a block-sized buffer per open file or folder
            self.log = RingLog(self.root + "/log", self.policy()["log_records"])
        return self.log

    def policy(self):
        st = self.slots.state
        name = st["candidate"] or st["active"]
        info = st["info"].get(name) or {}
        return make_policy(name, info.get("policy"), self._override)

    def _load_candidate(self):
        st = self.slots.state
        path = self.slots.path(st["candidate"])
        gc.collect()
        model = None
        try:
            model = self._load_fitting(path, self.active.arena)
        except OutOfMemoryError as exc:
            # The active model keeps serving; the candidate waits for more free heap.
            self.load_error = str(exc)
        except CapsuleError as exc:
            self.reject("failed verification when loaded: %s" % exc)
            return
        if model is None:
            self._note("candidate not loaded: %s" % self.load_error)
            return
        self.load_error = None
        if len(model.arena) > len(self.active.arena):
            # One arena for both: the active model moves into the candidate's larger one.
            self.active.close()
            self.active = None
            gc.collect()
            try:
                self.active = load(self.slots.path(st["active"]), self.kernels, None,
                                   model.arena)
            except CapsuleError as exc:
                model.close()
                model = None
                gc.collect()
                self.load_error = "the two models do not fit the heap together: %s" % exc
                self._load_active()
                return
            self._new_answer()
        self.candidate = model
        self.comparator = Comparator(self.active.info(), model.info(), self.policy(),
                                     st["counts"])
        self._log()

    def _drop_candidate(self):
        if self.candidate is not None:
            self.candidate.close()
        self.candidate = self.comparator = None
        gc.collect()

    # -- serving --------------------------------------------------------------------------
    def infer(self, x):
        m = self.active
        if m is None:
            raise CapsuleError("%s: no model to serve: copy a capsule into %s/inbox"
                               % (self.root, self.root))
        trial = self.slots.state["trial"]
        if trial is not None and not trial["started"]:
            self._start_trial()
        start = _ticks()
        try:
            out = m.run(x)
        except Exception as exc:  # noqa: BLE001 - any failure of a model on trial reverts it
            if self.slots.state["trial"] is None:
                raise
            self._revert("%s raised %r on trial" % (self.slots.state["active"], exc))
            return self.infer(x)
        spent = _elapsed(_ticks(), start)
        self._answer_view[_WHOLE] = out
        if self.slots.state["trial"] is not None:
            self._trial_step(spent)
        if self.candidate is not None:
            self._shadow(x, spent)
        return self._answer

    def _start_trial(self):
        # Written before the first inference on trial: a crash inside it reverts at the
        # next start.
        st = self.slots.state
        st["trial"]["started"] = True
        self.slots.save()
        TRIALS_THIS_BOOT.append(st["active"])

    def _trial_step(self, spent):
        st = self.slots.state
        trial = st["trial"]
        if trial["budget_us"] and spent > trial["budget_us"]:
            self._revert("%s took %d us, over its trial budget of %d us"
                         % (st["active"], spent, trial["budget_us"]))
            return
        self._healthy += 1
        if self._healthy >= trial["needed"]:
            st["trial"] = None
            self._note("confirmed %s after %d healthy inferences" % (st["active"],
                                                                    self._healthy))
            self.slots.save()

    def _shadow(self, x, spent_active):
        policy = self.policy_cache
        if policy is None:
            policy = self.policy_cache = self.policy()
        self._calls += 1
        comp = self.comparator
        if self._calls % policy["sample_every"] or self._shadow_us * 100 > \
                policy["duty_percent"] * _elapsed(_ticks(), self._started):
            comp.counts["skipped"] += 1
            return
        start = _ticks()
        try:
            out = self.candidate.run(x)
        except Exception as exc:  # noqa: BLE001 - a candidate's failure is counted, not raised
            comp.counts["errors"] += 1
            self._note("candidate raised %r" % exc)
            self._flush(policy)
            return
        spent = _elapsed(_ticks(), start)
        self._shadow_us += spent
        if not comp.compare(self._answer, out):
            inp = x[0] if isinstance(x, (list, tuple)) else x
            keep = policy["log_inputs"] and len(inp) <= policy["log_input_bytes"]
            self._log().append(self._now(), hashlib.sha256(bytes(inp)).digest(),
                               self._answer, out, inp if keep else b"", comp.last)
        comp.time(spent_active, spent)
        comp.checkpoint()
        if comp.counts["n"] % policy["flush_every"] == 0:
            self._flush(policy)

    def _flush(self, policy):
        comp = self.comparator
        st = self.slots.state
        st["counts"] = comp.counts
        self._decision = decide(comp.counts, policy, comp.metric)
        try:
            self.slots.save()
        except MemoryError:
            # Serving comes first: the counts are written at the next flush instead.
            return
        if policy["auto_promote"] and self._decision[0] == "promote":
            self.promote()
        elif policy["auto_promote"] and self._decision[0] == "reject":
            self.reject(self._decision[1])

    # -- decisions ------------------------------------------------------------------------
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

    # -- reporting ------------------------------------------------------------------------
    def status(self):
        st = self.slots.state

        def slot(name):
            if not name:
                return None
            info = dict(st["info"].get(name) or {})
            info.pop("policy", None)
            info["file"] = name
            return info

        counts = self.comparator.counts if self.comparator else st["counts"]
        shadow = None
        if st["candidate"] and counts:
            policy = self.policy()
            metric = self.comparator.metric if self.comparator else "top1"
            verdict, reason = decide(counts, policy, metric)
            lo, hi = wilson(counts["agree"], counts["n"], policy["z"])
            n = counts["n"]
            shadow = {"samples": n, "agree": counts["agree"],
                      "agreement": counts["agree"] / n if n else None, "wilson": [lo, hi],
                      "errors": counts["errors"], "skipped": counts["skipped"],
                      "metric": metric, "decision": verdict, "reason": reason,
                      "mean_us": [counts["us_active"] // n if n else 0,
                                  counts["us_candidate"] // n if n else 0]}
        trial = st["trial"]
        if trial is not None:
            trial = dict(trial)
            trial["healthy"] = self._healthy
        return {"active": slot(st["active"]), "candidate": slot(st["candidate"]),
                "previous": slot(st["previous"]), "trial": trial, "shadow": shadow,
                "candidate_load_error": self.load_error, "policy": self.policy(),
                "rejected": st["rejected"], "events": st["events"],
                "last_shadow": st.get("last_shadow"),
                "trusted_keys": sorted("".join("%02x" % b for b in k) for k in self.trusted),
                "accepts_unsigned": not self.trusted,
                "security_version": st.get("security_version")}

    def counts(self):
        # The running shadow counts (histograms, confusion, agreement history) for reports.
        return self.comparator.counts if self.comparator else self.slots.state["counts"]

    def log_records(self):
        # Disagreements of the current candidate, oldest first.
        start = self.slots.state.get("log_from", 0)
        return [r for r in self._log().read() if r["seq"] > start]

    def report(self, out=print):
        # Everything `minerva shadow report` plots, one JSON line at a time (a board never
        # holds the whole report in RAM): STATUS, COUNTS, IO, then one LOG line per record.
        import binascii

        out("STATUS " + json.dumps(self.status()))
        out("COUNTS " + json.dumps(self.counts()))
        io = {"inputs": None, "active": None, "candidate": None}
        if self.active is not None:
            io["inputs"] = self.active.info()["inputs"]
            io["active"] = self.active.info()["outputs"]
        if self.candidate is not None:
            io["candidate"] = self.candidate.info()["outputs"]
        out("IO " + json.dumps(io))
        for rec in self.log_records():
            for key in ("active", "candidate", "input"):
                rec[key] = binascii.hexlify(rec[key]).decode()
            out("LOG " + json.dumps(rec))

    def flush(self):
        # Writes the shadow counts now (they are written every flush_every inputs anyway).
        if self.comparator is not None:
            self._flush(self.policy())

    def close(self):
        for m in (self.active, self.candidate):
            if m is not None:
                m.close()
        self.active = self.candidate = None
