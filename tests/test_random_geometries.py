"""Differential tests over random geometries: every kernel, every tier, against the spec.

For each device kernel, ``--geometries N`` (default 1,000) seeded random cases from
tests/geometries.py run on the pure-Python spec (kernels_py) and the numpy tier on CPython, and
on the viper tier, the x64 native module and (every tenth case) kernels_py itself on the
MicroPython unix port -- each int8 buffer a memoryview slice inside a guarded array, as the
arena hands them out. Every output must equal the spec byte for byte, and no guard byte may
change. A 32-bit MicroPython named by ``MINERVA_MICROPYTHON32`` runs too (viper ints are machine
words). A failure prints a one-line reproduction; ``--geometry conv_2d:17`` runs just that case.

``--geometries 20000`` (or ``MINERVA_GEOMETRIES``) is the deeper run; ``--geometry-seed``
draws another set.
"""

import binascii
import os
import sys
from array import array
from pathlib import Path

import geometries
import geometries_math
import geometries_shape
import pytest
from conftest import MicroPython
from geometries import case_rng

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "device"))
from minerva import kernels_np, kernels_py  # noqa: E402
from minerva.tiers import bind  # noqa: E402

# Every device kernel's generator: the original ten, then the shape and math ops'.
GENERATORS = {**geometries.GENERATORS, **geometries_shape.GENERATORS,
              **geometries_math.GENERATORS}
ROOT = Path(__file__).resolve().parents[1]
NATMOD_DIST = ROOT / "dist" / "x64_6.3"
GUARD = 0x5A
# MicroPython runs the spec itself on every SPEC_EVERY-th case (it is slow there).
SPEC_EVERY = 10

# Reads one case per line (kernel, hex buffers, args, output spec), runs each tier on it and
# prints the CRC-32 of every tier's output and whether the guards held.
_MP_SCRIPT = """
import sys, json, binascii
from array import array
from minerva import kernels_py, kernels_viper
from minerva.tiers import bind
tiers = [("viper", kernels_viper)]
try:
    import minerva_nat
    tiers.append(("natmod", minerva_nat))
except ImportError:
    pass
def kernel(module, tier, op):
    fn, got = bind(module, tier, op, "case")
    if got != tier:  # a fallback would test another tier than the one named
        raise ValueError("%s has no %s" % (tier, op))
    return fn
def place(t, raw, pad):
    if raw is None:
        return None, None
    if t == "tuple":  # a variable-arity op takes its inputs as one tuple
        return tuple(place(tt, rr, pad)[0] for tt, rr in raw), None
    values = array(t, binascii.unhexlify(raw))
    if t != "b":
        return values, None
    whole = array("b", bytes([{guard}]) * (len(values) + 2 * pad))
    view = memoryview(whole)[pad:pad + len(values)]
    view[:] = values
    return view, whole
print("TIERS", " ".join(n for n, _ in tiers))
with open({path!r}) as f:
    for line in f:
        index, op, bufs, args, spec_too, out_spec = json.loads(line)
        results = []
        for name, tier in tiers + ([("python", kernels_py)] if spec_too else []):
            ins = [place(t, v, 3)[0] for t, v in bufs]
            if out_spec[0] == "b":
                out, whole = place("b", "00" * out_spec[1], 5)
            else:
                out, whole = array(out_spec[0], [0] * out_spec[1]), None
            fn = kernel(tier, name, op)
            fn(*(ins + [out, array("i", args)]))
            ok = whole is None or (all(whole[i] == {guard} for i in range(5)) and all(
                whole[len(whole) - 1 - i] == {guard} for i in range(5)))
            results.append("%s=%08x%s" % (name, binascii.crc32(bytes(out)) & 0xFFFFFFFF,
                                          "" if ok else "!GUARDS"))
        print("CASE", index, " ".join(results))
"""


def _selection(config, kernel):
    """Case indices to run for ``kernel`` under the command-line options."""
    only = config.getoption("--geometry")
    if only:
        name, _, index = only.partition(":")
        return [int(index)] if name == kernel else []
    count = config.getoption("--geometries") or int(os.environ.get("MINERVA_GEOMETRIES", 1000))
    return range(count)


def _spec(kernels, case):
    tier = "numpy" if kernels is kernels_np else "python"
    fn, got = bind(kernels, tier, case[0], "case")
    assert got == tier, f"{tier} has no {case[0]}"
    call = geometries_shape.kernel_call_args(case)
    fn(*call)
    return call[-2].tobytes()


def _raw(t, v):
    """A buffer entry as hex (a tuple entry as a list of them) for MicroPython."""
    if t == "tuple":
        return t, [_raw(tt, vv) for tt, vv in v]
    return t, None if v is None else array(t, v).tobytes().hex()


def _micropythons(micropython):
    yield micropython
    other = os.environ.get("MINERVA_MICROPYTHON32")
    if other:
        yield MicroPython(other)


def _repro(kernel, index, seed, case):
    return (f"repro: pytest tests/test_random_geometries.py --geometry {kernel}:{index} "
            f"--geometry-seed {seed}   # args={case[2]}")


@pytest.fixture(scope="module")
def natmod_path():
    # test_natmod builds it; `make test` builds it before pytest runs.
    if not (NATMOD_DIST / "minerva_nat.mpy").exists():
        from test_natmod import build_natmod

        build_natmod("x64")
    return NATMOD_DIST


@pytest.mark.parametrize("kernel", sorted(GENERATORS))
def test_random_geometries_every_tier_matches_spec(kernel, request, micropython, natmod_path,
                                                   tmp_path):
    seed = request.config.getoption("--geometry-seed")
    indices = list(_selection(request.config, kernel))
    if not indices:
        pytest.skip(f"--geometry selects another kernel than {kernel}")
    cases, expected, lines = {}, {}, []
    spread = 0
    for index in indices:
        case = GENERATORS[kernel](case_rng(seed, kernel, index))
        spec = _spec(kernels_py, case)
        assert _spec(kernels_np, case) == spec, \
            f"numpy tier differs from kernels_py\n{_repro(kernel, index, seed, case)}"
        cases[index] = case
        if case[3][0] == "b":
            spread += len(set(spec)) >= min(4, len(spec))
        else:
            spread += 1
        expected[index] = binascii.crc32(spec)
        raw = [_raw(t, v) for t, v in case[1]]
        spec_too = index % SPEC_EVERY == 0 or len(indices) == 1
        lines.append(_json_line([index, case[0], raw, case[2], spec_too, case[3]]))
    # Equal bytes prove little if the outputs all clamp: most cases must spread them.
    assert len(indices) < 20 or spread >= 0.5 * len(indices), f"{kernel}: {spread} spread"
    path = tmp_path / "cases.jsonl"
    path.write_text("".join(lines))
    for mp in _micropythons(micropython):
        proc = mp.run(_MP_SCRIPT.format(path=str(path), guard=GUARD), heapsize="16M",
                      extra_path=[natmod_path])
        out = proc.stdout.splitlines()
        tiers = out[0].split()[1:]
        assert "viper" in tiers and "natmod" in tiers, f"tiers on {mp.binary}: {tiers}"
        seen = 0
        for line in out[1:]:
            _, index, *results = line.split()
            index = int(index)
            for result in results:
                tier, _, crc = result.partition("=")
                assert not crc.endswith("!GUARDS"), (
                    f"{kernel} on {tier} ({mp.binary}) wrote outside its output\n"
                    f"{_repro(kernel, index, seed, cases[index])}")
                assert int(crc, 16) == expected[index], (
                    f"{kernel} on {tier} ({mp.binary}) differs from kernels_py\n"
                    f"{_repro(kernel, index, seed, cases[index])}")
            seen += 1
        assert seen == len(indices), f"MicroPython ran {seen} of {len(indices)} cases\n" \
            + proc.stderr[-2000:]


def _json_line(value):
    import json

    return json.dumps(value, separators=(",", ":")) + "\n"


def test_geometries_cross_every_block_size():
    # The suite is only as good as its geometries: in 1,000 cases of each windowed kernel,
    # channel counts span 1..300 and cross 64, 128 and 256 (the depthwise block of 64 hid
    # a bug), and every stride, dilation, padding and depth multiplier occurs.
    for kernel, channel_arg in (("conv_2d", 3), ("depthwise_conv_2d", 3), ("max_pool_2d", 3),
                                ("fully_connected", 2)):
        channels, strides, dilations, mults = set(), set(), set(), set()
        for index in range(1000):
            args = GENERATORS[kernel](case_rng(0, kernel, index))[2]
            channels.add(args[channel_arg])
            if kernel.endswith("conv_2d"):
                strides.update(args[9:11])
                dilations.update(args[11:13])
                channels.add(args[6])
            if kernel == "depthwise_conv_2d":
                mults.add(args[19])
        assert min(channels) == 1 and max(channels) >= 257, (kernel, sorted(channels))
        assert {63, 64, 65, 128, 129}.issubset(channels) or kernel == "fully_connected", kernel
        if kernel.endswith("conv_2d"):
            assert strides == {1, 2, 3} and dilations == {1, 2, 3}, kernel
        if kernel == "depthwise_conv_2d":
            assert mults == {1, 2, 3, 4}


def test_geometries_reach_the_edges_of_the_viper_grouped_kernels():
    # viper_conv and viper_depthwise8 take eight channels at a time, up to a filter size,
    # and requantize 64 pixels at a time with a method that changes at |acc| = 2**20: in
    # 1,000 cases each, every side of each of those edges occurs.
    seen = set()
    for kernel in ("conv_2d", "depthwise_conv_2d"):
        for index in range(1000):
            _, bufs, args, _ = GENERATORS[kernel](case_rng(0, kernel, index))
            taps = args[7] * args[8]
            pixels = args[0] * args[4] * args[5]
            bias = bufs[2][1]
            if kernel == "conv_2d":
                seen.add(("conv taps", min(taps * args[3], 577)))
                seen.add(("conv out_c % 8", args[6] % 8 == 0))
            elif args[19] == 1:
                seen.add(("depthwise taps", min(taps, 145)))
                seen.add(("depthwise channels", min(args[3] // 8, 2), args[3] % 8 == 0))
            seen.add((kernel, "pixels", min(pixels // 64, 2)))
            large = bias is not None and max(map(abs, bias)) >= 1 << 20
            seen.add((kernel, "bias >= 2**20", large))
    for edge in [("conv taps", 576), ("conv taps", 577), ("conv out_c % 8", False),
                 ("conv out_c % 8", True), ("depthwise taps", 144), ("depthwise taps", 145),
                 ("depthwise channels", 0, False), ("depthwise channels", 1, True),
                 ("depthwise channels", 1, False), ("depthwise channels", 2, False)]:
        assert edge in seen, edge
    depths = {GENERATORS["fully_connected"](case_rng(0, "fully_connected", index))[2][1]
              for index in range(1000)}
    assert min(depths) <= 1152 < max(depths), "fully_connected: depths past 1,152"
    for kernel in ("conv_2d", "depthwise_conv_2d"):
        for edge in [(kernel, "pixels", 0), (kernel, "pixels", 1), (kernel, "pixels", 2),
                     (kernel, "bias >= 2**20", True)]:
            assert edge in seen, edge


@pytest.mark.parametrize("kernel", ["conv_2d", "depthwise_conv_2d"])
def test_numpy_tier_in_row_blocks_matches_spec(kernel, monkeypatch):
    # Large windows are materialised a few output rows at a time; tiny blocks here make every
    # case take that path.
    monkeypatch.setattr(kernels_np, "_WINDOW_ELEMENTS", 64)
    for index in range(200):
        case = GENERATORS[kernel](case_rng(1, kernel, index))
        assert _spec(kernels_np, case) == _spec(kernels_py, case), \
            _repro(kernel, index, 1, case)


def test_numpy_tier_pools_a_huge_window_in_bounded_memory():
    # A 33 KB capsule once made this tier allocate gigabytes: a 1 x 262,149 pooling window
    # over 100 outputs.
    import resource

    f_w, width = 262_149, 100
    args = [1, 1, width, 8, 1, width, 1, f_w, 1, 1, 0, f_w // 2, -128, 127]
    values = [(v * 7) % 256 - 128 for v in range(width * 8)]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for kernel in ("average_pool_2d", "max_pool_2d"):
        case = (kernel, [("b", values)], args, ("b", width * 8))
        assert _spec(kernels_np, case) == _spec(kernels_py, case)
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kb < 512 * 1024, f"peak RSS grew by {grown_kb} KB"
