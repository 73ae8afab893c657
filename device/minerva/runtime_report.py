# Runtime, part: what it tells. status() for people and the desktop, counts() and
# log_records() for reports, report() as JSON lines for `minerva shadow report`.
import json

from .shadow import decide, wilson


class Reporting:
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
                "security_version": st.get("security_version"),
                # Weights used in place from flash (flashstore.py): which models, store size.
                "in_place": {"active": bool(self.active and self.active.in_place),
                             "candidate": bool(self.candidate and self.candidate.in_place),
                             "store_bytes": self.store.capacity() if self.store else 0,
                             "stored": sorted(self.store.entries) if self.store else []}}

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
        from .capsule import hexlify

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
                rec[key] = hexlify(rec[key]).decode()
            out("LOG " + json.dumps(rec))

