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
import json
import os
import time

from .capsule import NATIVE_CRC32, NATIVE_SHA256, sha256, unhexlify
from .errors import CapsuleError, OutOfMemoryError, UnsupportedError
from .graph import DTYPE_NAMES
from .memory import new_buffer
from .loader import load
from .ringlog import RingLog
from .shadow import Comparator, decide, make_policy
from .slots import TRIALS_THIS_BOOT, Slots
from .tiers import select_kernels
from .runtime_decisions import POLICY_FILE, Decisions
from .runtime_inbox import Inbox
from .runtime_report import Reporting
from .staging import KEYS, inspect_capsule, read_trusted_keys


if hasattr(time, "ticks_us"):
    _ticks = time.ticks_us
    _elapsed = time.ticks_diff
elif hasattr(time, "monotonic_ns"):  # CircuitPython boards: no ticks_* in their time module
    def _ticks():
        return time.monotonic_ns() // 1000

    def _elapsed(end, start):
        return end - start
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


class Runtime(Inbox, Decisions, Reporting):
    def __init__(self, root="/capsules", kernels=None, policy=None, keys=KEYS, store=True):
        self.root = root.rstrip("/")
        # The kernel tier first, while the heap is whole: its code is the largest allocation
        # after the arena, and staging (parsing, verifying signatures) scatters small objects.
        gc.collect()
        self.kernels = select_kernels(kernels, self.root)
        # Public keys provisioned on the board: once there is one, only its signatures pass.
        self.trusted = read_trusted_keys(keys)
        self.slots = Slots(self.root)
        # Where slot capsules are also kept to be used in place (flashstore.py): the board's
        # own with store=True (an RP2040's flash), a FlashStore given, or none.
        if store is True:
            from .flashstore import platform_store

            store = platform_store(self.root)
        self.store = store or None
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
                self.active = self._load_fitting(st["active"], None)
                break
            except (OutOfMemoryError, UnsupportedError):
                # The capsule is fine; this board (its heap, its kernels) is not, now. Nothing
                # is retired: after a reset with more free heap it serves again.
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

    def _recorded(self, slot):
        # The SHA-256 noted when the slot's capsule was verified in full at staging, passed to
        # load() only where digests are pure Python, so a boot does not hash it again. With
        # C digests the full check is cheap and the heap stays as it was (the tight-heap tests
        # of test_runtime.py show a few extra bytes there change what fits).
        if NATIVE_SHA256 and NATIVE_CRC32:
            return None
        digest = (self.slots.state["info"].get(slot) or {}).get("sha256")
        return unhexlify(digest) if digest else None

    def _in_store(self, slot):
        # The slot's capsule in the flash store (copied there first if need be), or None:
        # no store, kernels that cannot use weights in place, or no room beside the capsules
        # the other slots in use hold there (never overwritten: a loaded model reads them).
        if self.store is None or self.kernels[1] not in ("natmod", "viper"):
            return None
        st = self.slots.state
        keep = [n for n in (st["active"], st["candidate"]) if n and n != slot]
        gc.collect()
        try:
            return self.store.put(slot, self.slots.path(slot), keep)
        except (OSError, MemoryError) as exc:
            self._note("flash store: %s not copied (%r); loaded from its file" % (slot, exc))
            return None

    def _load_fitting(self, slot, arena):
        # In place from the flash store when it holds the capsule, else as planned, else
        # with every filter paged from flash; the last refusal is raised.
        path = self.slots.path(slot)
        held = self._in_store(slot)
        if held is not None:
            try:
                return load(held, self.kernels, None, arena, self._recorded(slot))
            except (OutOfMemoryError, UnsupportedError):
                gc.collect()
            except CapsuleError as exc:
                # A damaged copy: forgotten, and the slot's file (verified below) serves.
                self.store.prune([n for n in self.slots.named() if n != slot])
                self._note("flash store: the copy of %s failed verification (%s)"
                           % (slot, exc))
        try:
            return load(path, self.kernels, None, arena, self._recorded(slot))
        except OutOfMemoryError:
            gc.collect()
        return load(path, self.kernels, True, arena, self._recorded(slot))

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
        gc.collect()
        model = None
        try:
            model = self._load_fitting(st["candidate"], self.active.arena)
        except (OutOfMemoryError, UnsupportedError) as exc:
            # The active model keeps serving; the candidate waits for more free heap (or
            # for a kernel tier that could not be imported now).
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
                self.active = self._load_fitting(st["active"], model.arena)
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
            self._log().append(self._now(), sha256(bytes(inp)).digest(),
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

    def flush(self):
        # Writes the shadow counts now (they are written every flush_every inputs anyway).
        if self.comparator is not None:
            self._flush(self.policy())

    # -- training (docs/training.md): the trainer is imported only when training is used --
    def trainer(self, measure=False):
        # The trainer of the active capsule (which must be packed with --trainable).
        if getattr(self, "_trainer", None) is None:
            if self.active is None:
                raise CapsuleError("%s: no active model to train" % self.root)
            # Compiling the trainer needs heap; garbage left by serving must not cut it up
            # (its three largest buffers are allocated right after).
            gc.collect()
            from .trainer import Trainer

            self._trainer = Trainer(self.active, self.slots.path(self.slots.state["active"]),
                                    self.root + "/train.scratch", measure)
        return self._trainer

    def learn(self, x, label):
        return self.trainer().learn(x, label)

    def train(self, samples, labels, epochs=1):
        return self.trainer().train(samples, labels, epochs)

    def stage_trained(self):
        # The trained weights as the next version, written into the inbox and staged as the
        # candidate (shadow-tested before it may serve). Returns the candidate's file name.
        from .train_export import export

        trainer = self.trainer()
        trainer.step()
        path = export(trainer, self.slots.inbox)
        trainer.close()
        self._trainer = None
        gc.collect()
        self.poll()
        return path

    def close(self):
        if getattr(self, "_trainer", None) is not None:
            self._trainer.close()
            self._trainer = None
        for m in (self.active, self.candidate):
            if m is not None:
                m.close()
        self.active = self.candidate = None
