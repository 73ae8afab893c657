# Shadow testing without labels: the candidate answers the same input as the active model,
# the two answers are compared, running counts are kept and a policy decides. No flash I/O
# here (slots.py, ringlog.py) and no kernels (the models run them).
import math

from .errors import CapsuleError

# The policy a candidate is judged by: these defaults, then the candidate capsule's
# SHADOW_POLICY section, then the board's override (/capsules/policy.json).
DEFAULTS = {
    "sample_every": 1,          # shadow 1 inference in N
    "duty_percent": 100,        # at most this share of the time since staging spent shadowing
    "metric": "auto",           # top1 (classifiers), max_abs or cosine; auto: top1 after SOFTMAX
    "tolerance": None,          # max_abs: largest real difference; cosine: smallest cosine
    "min_samples": 100,         # no decision before this many compared inputs
    "promote_at": 0.95,         # agreement whose Wilson lower bound promotes
    "z": 1.96,                  # the bound's normal quantile (1.96: 95 % two-sided)
    "max_confidence_drop": 0.1,  # candidate's mean top-1 confidence below the active's by more
    "max_errors": 0,            # candidate exceptions tolerated
    "max_latency_ratio": 3.0,   # candidate mean latency over the active's
    "auto_promote": False,      # act on the decision without being asked
    "confirm_after": 20,        # healthy inferences that confirm a promoted capsule
    "latency_budget_ms": None,  # trial: slower is unhealthy (default: 2x slowest shadow + 5 ms)
    "log_records": 32,          # disagreement ring log size, in records
    "log_inputs": True,         # keep the input in each record (when it fits log_input_bytes)
    "log_input_bytes": 4096,
    "flush_every": 25,          # compared inputs between writes of the counts to flash
    "allow_downgrade": False,   # stage a version older than the newest the board has run
}
_TOLERANCE = {"max_abs": 0.0, "cosine": 0.99}
METRICS = ("top1", "max_abs", "cosine")
_CONF_BINS = 10
_LAT_BINS = 16
_MAX_CONFUSION = 32
_MAX_HISTORY = 64


def make_policy(name, *layers):
    # Defaults overlaid by each dict in layers; unknown keys and bad values are refused.
    policy = dict(DEFAULTS)
    for layer in layers:
        for key, value in (layer or {}).items():
            if key not in DEFAULTS:
                raise CapsuleError("%s: shadow policy has no setting %r (settings: %s)"
                                   % (name, key, ", ".join(sorted(DEFAULTS))))
            want = DEFAULTS[key]
            if isinstance(want, bool) or key == "metric":
                ok = type(value) is type(want)
            else:  # numbers; None where the default is None (then derived)
                ok = (value is None and want is None) or (
                    isinstance(value, (int, float)) and not isinstance(value, bool))
            if not ok:
                raise CapsuleError("%s: shadow policy %s is %r, not a %s" % (
                    name, key, value, "true/false" if isinstance(want, bool) else
                    "string" if key == "metric" else "number"))
            policy[key] = value
    for key in ("sample_every", "min_samples", "confirm_after", "log_records", "flush_every"):
        if not isinstance(policy[key], int) or policy[key] < 1:
            raise CapsuleError("%s: shadow policy %s is %r, not a positive integer"
                               % (name, key, policy[key]))
    if not 0 < policy["duty_percent"] <= 100:
        raise CapsuleError("%s: shadow policy duty_percent must be in 1..100" % name)
    if not 0.0 <= policy["promote_at"] <= 1.0:
        raise CapsuleError("%s: shadow policy promote_at must be in 0..1" % name)
    if policy["metric"] != "auto" and policy["metric"] not in METRICS:
        raise CapsuleError("%s: shadow policy metric %r is not auto, %s"
                           % (name, policy["metric"], ", ".join(METRICS)))
    policy["log_records"] = min(policy["log_records"], 256)
    return policy


def wilson(agree, n, z):
    # Wilson score interval of a binomial proportion: sound at small n and near 0 or 1,
    # where the normal approximation's interval leaves [0, 1] or collapses.
    if n == 0:
        return 0.0, 1.0
    p = agree / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def new_counts(classes, metric):
    counts = {"n": 0, "agree": 0, "errors": 0, "skipped": 0,
              "conf_active": [0] * _CONF_BINS, "conf_candidate": [0] * _CONF_BINS,
              "lat_active": [0] * _LAT_BINS, "lat_candidate": [0] * _LAT_BINS,
              "us_active": 0, "us_candidate": 0, "max_diff": 0.0, "sum_conf_active": 0.0,
              "sum_conf_candidate": 0.0, "history": [], "history_step": 1}
    if metric == "top1" and classes <= _MAX_CONFUSION:
        counts["confusion"] = [[0] * classes for _ in range(classes)]
    return counts


def median_us(hist):
    # The upper edge of the bin holding the median latency (0 without samples).
    total = sum(hist)
    seen = 0
    for k, n in enumerate(hist):
        seen += n
        if total and 2 * seen >= total:
            return 128 << k
    return 0


def latency_bin(us):
    # Bin k holds latencies in [2^(k-1), 2^k) x 128 us; bin 0 under 128 us.
    k = 0
    us >>= 7
    while us and k < _LAT_BINS - 1:
        us >>= 1
        k += 1
    return k


class Comparator:
    # Compares outputs[0] of two models with the same output shape.
    def __init__(self, active_info, candidate_info, policy, counts=None):
        out_a = active_info["outputs"][0]
        out_c = candidate_info["outputs"][0]
        self.size = 1
        for d in out_a["shape"]:
            self.size *= d
        metric = policy["metric"]
        if metric == "auto":
            metric = "top1" if candidate_info["ops"][-1] == "SOFTMAX" and self.size > 1 \
                else "max_abs"
        self.metric = metric
        tol = policy["tolerance"]
        self.tolerance = _TOLERANCE.get(metric, 0.0) if tol is None else tol
        self.float_a = out_a["dtype"] == "float32"
        self.float_c = out_c["dtype"] == "float32"
        self.scale_a, self.zp_a = out_a["scale"] or 1.0, out_a["zero_point"]
        self.scale_c, self.zp_c = out_c["scale"] or 1.0, out_c["zero_point"]
        self.counts = counts if counts is not None and counts.get("n") is not None \
            else new_counts(self.size, metric)
        self.last = (0, 0)

    def _real_a(self, v):
        return v if self.float_a else (v - self.zp_a) * self.scale_a

    def _real_c(self, v):
        return v if self.float_c else (v - self.zp_c) * self.scale_c

    def compare(self, a, c):
        # True when the answers agree under the metric; updates the counts. ``last`` keeps
        # the two top-1 classes (or -1) for the log.
        counts = self.counts
        counts["n"] += 1
        if self.metric == "top1":
            ka = kc = 0
            for i in range(1, self.size):
                if a[i] > a[ka]:
                    ka = i
                if c[i] > c[kc]:
                    kc = i
            agree = ka == kc
            self.last = (ka, kc)
            conf_a = self._real_a(a[ka])
            conf_c = self._real_c(c[kc])
            counts["sum_conf_active"] += conf_a
            counts["sum_conf_candidate"] += conf_c
            counts["conf_active"][_conf_bin(conf_a)] += 1
            counts["conf_candidate"][_conf_bin(conf_c)] += 1
            if "confusion" in counts:
                counts["confusion"][ka][kc] += 1
        else:
            diff = dot = na = nc = 0.0
            for i in range(self.size):
                ra = self._real_a(a[i])
                rc = self._real_c(c[i])
                d = abs(ra - rc)
                if d > diff:
                    diff = d
                dot += ra * rc
                na += ra * ra
                nc += rc * rc
            if diff > counts["max_diff"]:
                counts["max_diff"] = diff
            if self.metric == "max_abs":
                agree = diff <= self.tolerance
            else:
                cos = dot / math.sqrt(na * nc) if na and nc else (1.0 if na == nc else 0.0)
                agree = cos >= self.tolerance
            self.last = (-1, -1)
        if agree:
            counts["agree"] += 1
        return agree

    def time(self, us_active, us_candidate):
        counts = self.counts
        counts["us_active"] += us_active
        counts["us_candidate"] += us_candidate
        counts["lat_active"][latency_bin(us_active)] += 1
        counts["lat_candidate"][latency_bin(us_candidate)] += 1

    def checkpoint(self):
        # Agreement over time, at most _MAX_HISTORY points: when full, every other point is
        # dropped and the spacing doubles.
        counts = self.counts
        hist = counts["history"]
        if counts["n"] % counts["history_step"]:
            return
        hist.append([counts["n"], counts["agree"]])
        if len(hist) >= _MAX_HISTORY:
            counts["history"] = hist[1::2]
            counts["history_step"] *= 2


def _conf_bin(p):
    k = int(p * _CONF_BINS)
    return 0 if k < 0 else (_CONF_BINS - 1 if k >= _CONF_BINS else k)


def decide(counts, policy, metric):
    # ("promote" | "reject" | "shadow", reason): label-free, from the agreement's Wilson
    # interval, the candidate's errors, confidence and latency.
    n, agree = counts["n"], counts["agree"]
    lo, hi = wilson(agree, n, policy["z"])
    rate = agree / n if n else 0.0
    said = "agreement %.1f%% over %d inputs (Wilson %.0f%% interval %.1f-%.1f%%)" % (
        100 * rate, n, 100 * _coverage(policy["z"]), 100 * lo, 100 * hi)
    if counts["errors"] > policy["max_errors"]:
        return "reject", "the candidate raised %d errors (%d allowed)" % (
            counts["errors"], policy["max_errors"])
    if n < policy["min_samples"]:
        return "shadow", "%s; %d more needed before a decision" % (said,
                                                                   policy["min_samples"] - n)
    if hi < policy["promote_at"]:
        return "reject", "%s cannot reach the %.1f%% needed" % (said, 100 * policy["promote_at"])
    if metric == "top1":
        drop = (counts["sum_conf_active"] - counts["sum_conf_candidate"]) / n
        if drop > policy["max_confidence_drop"]:
            return "reject", "%s, but the candidate's mean top-1 confidence is %.3f below " \
                "the active's (%.3f allowed)" % (said, drop, policy["max_confidence_drop"])
    # Medians, not means: one garbage collection inside a 20 us inference is a 50x outlier.
    slow_a, slow_c = median_us(counts["lat_active"]), median_us(counts["lat_candidate"])
    if slow_a and slow_c > policy["max_latency_ratio"] * slow_a:
        return "reject", "%s, but the candidate's median latency is %.0fx the active's " \
            "(%.1fx allowed)" % (said, slow_c / slow_a, policy["max_latency_ratio"])
    if lo >= policy["promote_at"]:
        return "promote", "%s reaches the %.1f%% needed" % (said, 100 * policy["promote_at"])
    return "shadow", "%s: not yet sure it reaches %.1f%%" % (said, 100 * policy["promote_at"])


def _coverage(z):
    # Two-sided coverage of a normal quantile: 1.96 -> 0.95.
    return math.erf(z / math.sqrt(2)) if hasattr(math, "erf") else 0.95
