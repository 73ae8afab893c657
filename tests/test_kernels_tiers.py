"""The viper and numpy kernel tiers give the same bytes as the pure-Python spec (kernels_py).

Kernel by kernel on seeded generated vectors: viper against kernels_py on the MicroPython unix
port (buffers are memoryview slices at odd offsets inside guarded arrays, as the arena hands
them out), numpy against kernels_py on CPython. Then whole models: every shared model and every
generated op model, run with ``kernels="viper"`` on MicroPython and ``kernels="numpy"`` on
CPython, against ``kernels="python"``.

Viper ints are machine words (64-bit here, 32-bit on boards), so the viper tests also run on a
32-bit MicroPython unix build when ``MINERVA_MICROPYTHON32`` names one. With gcc-multilib, in a
MicroPython checkout: ``make -C mpy-cross && make -C ports/unix BUILD=build-32
CFLAGS_EXTRA=-m32 LDFLAGS_EXTRA=-m32 FROZEN_MANIFEST= MICROPY_PY_FFI=0 MICROPY_PY_BTREE=0
MICROPY_PY_SSL=0 MICROPY_SSL_MBEDTLS=0 MICROPY_PY_THREAD=0`` (binary:
ports/unix/build-32/micropython).
"""

import json
import os
import sys
import zlib
from array import array
from pathlib import Path

import numpy as np
import pytest
from conftest import MicroPython
from device_runner import run_on_cpython, run_on_micropython

from minerva_packager.capsule import quant
from minerva_packager.capsule.pack import pack_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "device"))
from minerva import kernels_np, kernels_py  # noqa: E402

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1
GUARD = 0x5A  # the bytes around every int8 buffer; a kernel must leave them alone

# -- case generators: each returns (kernel name, [(typecode, values) ...], args, output) -----


def _int8(rng, n):
    return rng.integers(-128, 128, n).tolist()


def _requant_shift(fan_in):
    # A shift that keeps (mult in [2**30, 2**31)) * acc / 2**31 * 2**shift in int8 range for
    # uniform int8 data, so outputs are spread and not all clamped.
    return -int(round(6.5 + 0.5 * np.log2(fan_in)))


def _channel_quant(rng, out_c, fan_in, extreme=False):
    mults = rng.integers(1 << 30, 1 << 31, out_c).tolist()
    shifts = (_requant_shift(fan_in) + rng.integers(-1, 2, out_c)).tolist()
    if extreme:
        edges = [0, 1, 1 << 30, INT32_MAX, (1 << 31) - 2]
        for k, m in enumerate(edges[:out_c]):
            mults[k] = m
    return mults, shifts


def _conv(rng, op="conv_2d", batches=1, hw=(6, 7), in_c=3, out_c=4, kernel=(3, 3),
          stride=(1, 1), dilation=(1, 1), padding="SAME", bias=True, act=(-128, 127),
          depth_mult=1, in_off=None, out_off=None, extreme=False):
    in_h, in_w = hw
    out_h = quant.out_size(padding, in_h, kernel[0], stride[0], dilation[0])
    out_w = quant.out_size(padding, in_w, kernel[1], stride[1], dilation[1])
    pad_t = quant.pad_before(stride[0], dilation[0], in_h, kernel[0], out_h) \
        if padding == "SAME" else 0
    pad_l = quant.pad_before(stride[1], dilation[1], in_w, kernel[1], out_w) \
        if padding == "SAME" else 0
    depthwise = op == "depthwise_conv_2d"
    if depthwise:
        out_c = in_c * depth_mult
    fan_in = kernel[0] * kernel[1] * (1 if depthwise else in_c)
    f_count = kernel[0] * kernel[1] * out_c * (1 if depthwise else in_c)
    in_off = int(rng.integers(-127, 129)) if in_off is None else in_off
    out_off = int(rng.integers(-128, 128)) if out_off is None else out_off
    mults, shifts = _channel_quant(rng, out_c, fan_in, extreme)
    args = [batches, in_h, in_w, in_c, out_h, out_w, out_c, kernel[0], kernel[1], stride[0],
            stride[1], dilation[0], dilation[1], pad_t, pad_l, in_off, out_off, *act]
    if depthwise:
        args.append(depth_mult)
    bias_values = rng.integers(-40000, 40000, out_c).tolist() if bias else None
    bufs = [("b", _int8(rng, batches * in_h * in_w * in_c)), ("b", _int8(rng, f_count)),
            ("i", bias_values), ("i", mults), ("i", shifts)]
    return op, bufs, args, ("b", batches * out_h * out_w * out_c)


def _fully_connected(rng, batches=1, depth=24, out_c=7, bias=True, f_off=0, act=(-128, 127),
                     out_off=None):
    mults, shifts = _channel_quant(rng, out_c, depth)
    out_off = int(rng.integers(-20, 20)) if out_off is None else out_off
    args = [batches, depth, out_c, int(rng.integers(-127, 129)), f_off, out_off, *act]
    bufs = [("b", _int8(rng, batches * depth)), ("b", _int8(rng, out_c * depth)),
            ("i", rng.integers(-40000, 40000, out_c).tolist() if bias else None),
            ("i", mults), ("i", shifts)]
    return "fully_connected", bufs, args, ("b", batches * out_c)


def _requantize_edges(rng, count=240):
    """MultiplyByQuantizedMultiplier over the whole int32 range: a depth-1 FC whose products
    are all zero, so each channel's accumulator is its bias. Accumulators are aimed at results
    in [-130, 130] so rounding differences are not hidden by the clamp; edge accumulators,
    multipliers and shifts (both int32 limits, ties at m = 2**30, shifts -31..30) are added."""
    accs, mults, shifts = [], [], []
    for _ in range(count):
        s = int(rng.integers(-31, 31))
        m = int(rng.choice([1 << 30, INT32_MAX, int(rng.integers(1 << 30, 1 << 31)),
                            int(rng.integers(1, 1 << 31))]))
        limit = 1 << (31 - max(s, 0))  # acc << s must stay inside int32, as in TFLite
        target = float(rng.integers(-130, 131)) + float(rng.uniform(-1, 1))
        acc = int(round(target * 2.0 ** (31 - s) / m))
        if not -limit <= acc < limit:
            acc = int(rng.integers(-limit, limit))
        accs.append(acc)
        mults.append(m)
        shifts.append(s)
    for acc, m, s in [(INT32_MIN, INT32_MAX, -31), (INT32_MAX, INT32_MAX, -31),
                      (INT32_MIN, 1 << 30, -31), (INT32_MAX, 1 << 30, -30), (INT32_MIN, 0, 0),
                      (-1, INT32_MAX, 30), (1, INT32_MAX, 30), (-3, 1 << 30, 0),
                      (3, 1 << 30, 0), (-5, 1 << 30, -1), (5, 1 << 30, -1), (-1, 1, 0),
                      (INT32_MIN, 1, 0), (INT32_MAX, INT32_MAX, -24), (INT32_MIN, 1 << 30, -24),
                      ((1 << 23) - 1, 1 << 30, -17), (-(1 << 23) + 1, 1 << 30, -17)]:
        accs.append(acc)
        mults.append(m)
        shifts.append(s)
    n = len(accs)
    bufs = [("b", [0]), ("b", [0] * n), ("i", accs), ("i", mults), ("i", shifts)]
    return "fully_connected", bufs, [1, 1, n, 0, 0, 0, -128, 127], ("b", n)


def _pool(rng, op, batches=1, hw=(9, 8), chans=3, window=(2, 2), stride=(2, 2),
          padding="VALID", act=(-128, 127), pad=None):
    in_h, in_w = hw
    out_h = quant.out_size(padding, in_h, window[0], stride[0], 1)
    out_w = quant.out_size(padding, in_w, window[1], stride[1], 1)
    pad_t = quant.pad_before(stride[0], 1, in_h, window[0], out_h) if padding == "SAME" else 0
    pad_l = quant.pad_before(stride[1], 1, in_w, window[1], out_w) if padding == "SAME" else 0
    if pad is not None:
        # Padding wider than the window (only a hostile capsule has it): windows with no taps.
        (pad_t, pad_l), out_h, out_w = pad, in_h + 2 * pad[0], in_w + 2 * pad[1]
    args = [batches, in_h, in_w, chans, out_h, out_w, window[0], window[1], stride[0],
            stride[1], pad_t, pad_l, *act]
    return op, [("b", _int8(rng, batches * in_h * in_w * chans))], args, \
        ("b", batches * out_h * out_w * chans)


def _add(rng, scales=(1.0, 1.0), out_scale=1.5, size=300, act=(-128, 127)):
    p = quant.add_params(scales[0], scales[1], out_scale)
    args = [size, int(rng.integers(-127, 129)), int(rng.integers(-127, 129)),
            int(rng.integers(-128, 128)), p["left_shift"], p["input1_mult"],
            p["input1_shift"], p["input2_mult"], p["input2_shift"], p["output_mult"],
            p["output_shift"], *act]
    return "add", [("b", _int8(rng, size)), ("b", _int8(rng, size))], args, ("b", size)


def _softmax(rng, beta=1.0, input_scale=0.02, rows=1, depth=10, spread=128):
    mult, shift, diff_min = quant.softmax_params(beta, input_scale)
    values = rng.integers(-spread, spread, rows * depth).tolist()
    return "softmax", [("b", values)], \
        [rows, depth, mult, shift, diff_min], ("b", rows * depth)


def _requantize(rng, in_scale, out_scale, size=200):
    mult, shift = quant.requantize_params(in_scale, out_scale)
    args = [1, size, int(rng.integers(-128, 128)), int(rng.integers(-128, 128)), mult, shift]
    return "quantize", [("b", _int8(rng, size))], args, ("b", size)


def _quantize_float(rng, size=200, scale=0.05, zero_point=-7):
    xs = np.concatenate([rng.normal(0, 4, size - 8),
                         [0.025, -0.025, 0.075, -0.075, 1e9, -1e9, 6.35, -6.45]])
    values = np.float32(xs).tolist()
    return "quantize", [("f", values)], [0, size, zero_point, quant.float32_bits(scale), 0, 0], \
        ("b", size)


def _dequantize(rng, size=100):
    return "dequantize", [("b", _int8(rng, size))], [size, 5, quant.float32_bits(0.0625)], \
        ("f", size)


CASES = {
    "conv_2d_int8_same_stride1": lambda r: _conv(r),
    "conv_2d_int8_valid_stride2": lambda r: _conv(r, hw=(9, 8), in_c=2, stride=(2, 2),
                                                  padding="VALID"),
    "conv_2d_int8_same_stride2_channels8": lambda r: _conv(r, hw=(7, 7), in_c=8, out_c=6,
                                                           stride=(2, 2)),
    "conv_2d_int8_dilation2": lambda r: _conv(r, hw=(9, 10), in_c=2, dilation=(2, 2)),
    "conv_2d_int8_dilation_stride_mixed": lambda r: _conv(r, hw=(11, 9), kernel=(3, 2),
                                                          stride=(2, 1), dilation=(1, 3)),
    "conv_2d_int8_kernel5x1_valid": lambda r: _conv(r, hw=(8, 4), kernel=(5, 1),
                                                    padding="VALID"),
    "conv_2d_int8_batch2_1x1_nobias": lambda r: _conv(r, batches=2, hw=(4, 5), in_c=6,
                                                      kernel=(1, 1), bias=False),
    "conv_2d_int8_relu_range": lambda r: _conv(r, act=(-30, 127), out_off=-30),
    "conv_2d_int8_relu6_range": lambda r: _conv(r, act=(-128, -60), out_off=-128),
    "conv_2d_int8_extreme_multipliers": lambda r: _conv(r, out_c=6, extreme=True),
    "conv_2d_int8_offset_edges": lambda r: _conv(r, in_off=128, out_off=127),
    "depthwise_conv_2d_int8_dm1_same": lambda r: _conv(r, "depthwise_conv_2d", in_c=4),
    "depthwise_conv_2d_int8_dm2_valid_stride2": lambda r: _conv(
        r, "depthwise_conv_2d", hw=(9, 9), in_c=3, depth_mult=2, stride=(2, 2),
        padding="VALID"),
    "depthwise_conv_2d_int8_dm2_dilation2_nobias": lambda r: _conv(
        r, "depthwise_conv_2d", hw=(9, 8), in_c=2, depth_mult=2, dilation=(2, 2), bias=False),
    "depthwise_conv_2d_int8_batch2_relu6": lambda r: _conv(
        r, "depthwise_conv_2d", batches=2, in_c=3, act=(-128, -70), out_off=-128),
    "depthwise_conv_2d_int8_dm3_kernel3x2_stride1x2": lambda r: _conv(
        r, "depthwise_conv_2d", in_c=2, depth_mult=3, kernel=(3, 2), stride=(1, 2)),
    # MobileNet's 6x6x128 block: viper accumulates channels in blocks of 64, and the second
    # block once overwrote the first block's outputs.
    "depthwise_conv_2d_int8_dm1_channels128_6x6": lambda r: _conv(
        r, "depthwise_conv_2d", hw=(6, 6), in_c=128),
    "depthwise_conv_2d_int8_dm1_channels130_stride2": lambda r: _conv(
        r, "depthwise_conv_2d", hw=(5, 4), in_c=130, stride=(2, 2)),
    "fully_connected_int8_basic": lambda r: _fully_connected(r),
    "fully_connected_int8_batch3_nobias": lambda r: _fully_connected(r, batches=3, bias=False),
    "fully_connected_int8_filter_offset": lambda r: _fully_connected(r, f_off=17),
    "fully_connected_int8_relu": lambda r: _fully_connected(r, out_c=12, act=(-5, 127),
                                                                   out_off=-5),
    "fully_connected_int8_requantize_edges": _requantize_edges,
    "average_pool_2d_int8_valid_2x2_stride2": lambda r: _pool(r, "average_pool_2d"),
    "average_pool_2d_int8_same_3x3_stride2": lambda r: _pool(
        r, "average_pool_2d", window=(3, 3), padding="SAME"),
    "average_pool_2d_int8_batch2_same_3x2_relu": lambda r: _pool(
        r, "average_pool_2d", batches=2, window=(3, 2), stride=(1, 1), padding="SAME",
        act=(0, 127)),
    "average_pool_2d_int8_empty_windows": lambda r: _pool(
        r, "average_pool_2d", hw=(3, 3), window=(2, 2), stride=(1, 1), pad=(3, 2),
        act=(-3, 127)),
    "max_pool_2d_int8_valid_3x3_stride1": lambda r: _pool(
        r, "max_pool_2d", window=(3, 3), stride=(1, 1)),
    "max_pool_2d_int8_same_2x2_stride2": lambda r: _pool(r, "max_pool_2d", padding="SAME",
                                                         hw=(7, 7)),
    "max_pool_2d_int8_relu6_batch2": lambda r: _pool(r, "max_pool_2d", batches=2,
                                                     act=(-128, 20)),
    "max_pool_2d_int8_empty_windows": lambda r: _pool(
        r, "max_pool_2d", hw=(3, 3), window=(2, 2), stride=(1, 1), pad=(3, 2)),
    "add_int8_same_scales": lambda r: _add(r),
    "add_int8_different_scales": lambda r: _add(r, (0.02, 0.5), 0.4),
    "add_int8_extreme_scales": lambda r: _add(r, (1.0, 1e-4), 1.1),
    "add_int8_relu": lambda r: _add(r, (0.3, 0.1), 0.25, act=(-17, 127)),
    "reshape_int8_copy": lambda r: ("reshape", [("b", _int8(r, 77))], [77], ("b", 77)),
    "softmax_int8_beta1": lambda r: _softmax(r),
    "softmax_int8_beta0_5_rows3": lambda r: _softmax(r, beta=0.5, input_scale=0.05, rows=3,
                                                     depth=6),
    "softmax_int8_beta2_wide": lambda r: _softmax(r, beta=2.0, input_scale=0.01, depth=40),
    "softmax_int8_large_scale_diff_min": lambda r: _softmax(r, input_scale=0.9, depth=12,
                                                            spread=12),
    "softmax_int8_tiny_scale": lambda r: _softmax(r, beta=1.0, input_scale=1 / 256, rows=2),
    "softmax_int8_depth1_rows4": lambda r: _softmax(r, rows=4, depth=1),
    # Long rows make large sums: little headroom, final exponents 33 (>= 32: all -128) and 30.
    "softmax_int8_long_row": lambda r: _softmax(r, input_scale=1e-3, depth=1500),
    "softmax_int8_long_row_exponent30": lambda r: _softmax(r, input_scale=3e-3, depth=300),
    "softmax_int8_mixed_params": lambda r: _softmax(r, beta=float(r.uniform(0.1, 3.0)),
                                                    input_scale=float(r.uniform(0.005, 0.3)),
                                                    rows=5, depth=9, spread=60),
    "quantize_int8_requantize_wider": lambda r: _requantize(r, 0.1, 0.25),
    "quantize_int8_requantize_narrower": lambda r: _requantize(r, 0.1, 0.03),
    "quantize_int8_requantize_left_shift": lambda r: _requantize(r, 0.5, 0.02),
    "quantize_int8_from_float": _quantize_float,
    "dequantize_int8_to_float": _dequantize,
}


def _generate(name):
    return CASES[name](np.random.default_rng(zlib.crc32(name.encode())))


def _run_cpython(kernels, case):
    op, bufs, args, (out_type, out_len) = case
    out = array(out_type, bytes(4 * out_len if out_type in "if" else out_len))
    fn = getattr(kernels, op)
    fn(*[None if v is None else array(t, v) for t, v in bufs], out, array("i", args))
    return out.tobytes()


# Builds each buffer inside a guarded array at an odd offset (int8 buffers) and hands the
# kernel memoryview slices, as the arena does; prints each tier's output and its guards.
_MP_SCRIPT = """
import json, binascii
from array import array
from minerva import kernels_py, kernels_viper
op, bufs, args, out_spec = json.load(open({path!r}))
def place(t, raw, pad):
    if raw is None:
        return None, None
    values = array(t, binascii.unhexlify(raw))
    if t != "b":
        return values, None
    whole = array("b", [{guard}] * (len(values) + 2 * pad))
    for i, v in enumerate(values):
        whole[pad + i] = v
    return memoryview(whole)[pad:pad + len(values)], whole
for tier in (kernels_py, kernels_viper):
    ins = [place(t, v, 3)[0] for t, v in bufs]
    if out_spec[0] == "b":
        out, whole = place("b", "00" * out_spec[1], 5)
    else:
        out, whole = array(out_spec[0], [0] * out_spec[1]), None
    getattr(tier, op)(*(ins + [out, array("i", args)]))
    guards = whole is None or all(whole[i] == {guard} for i in
                                  list(range(5)) + list(range(len(whole) - 5, len(whole))))
    print("OUT", binascii.hexlify(bytes(out)).decode(), "GUARDS", guards)
"""


def _micropythons(micropython):
    yield micropython
    other = os.environ.get("MINERVA_MICROPYTHON32")
    if other:
        yield MicroPython(other)


def _check_case(name, micropython, tmp_path):
    case = _generate(name)
    spec = _run_cpython(kernels_py, case)
    assert _run_cpython(kernels_np, case) == spec, f"{name}: numpy differs from kernels_py"
    path = tmp_path / "case.json"
    # Raw bytes, not decimal floats: MicroPython's float parsing need not round like CPython's.
    raw = [(t, None if v is None else array(t, v).tobytes().hex()) for t, v in case[1]]
    path.write_text(json.dumps([case[0], raw, case[2], case[3]]))
    for mp in _micropythons(micropython):
        proc = mp.run(_MP_SCRIPT.format(path=str(path), guard=GUARD))
        lines = [line.split() for line in proc.stdout.splitlines() if line.startswith("OUT")]
        (_, py_hex, _, py_guards), (_, viper_hex, _, viper_guards) = lines
        assert bytes.fromhex(py_hex) == spec, f"{name}: kernels_py on {mp.binary} differs"
        assert bytes.fromhex(viper_hex) == spec, f"{name}: viper on {mp.binary} differs"
        assert py_guards == viper_guards == "True", f"{name}: wrote outside its output"


def _make_test(name):
    def test(micropython, tmp_path):
        _check_case(name, micropython, tmp_path)

    test.__name__ = test.__qualname__ = f"test_{name}"
    test.__doc__ = f"{name}: viper (MicroPython) and numpy (CPython) equal kernels_py."
    return test


# One named test per case (test_<op>_int8_<case>), so a failure names the kernel and case.
for _name in CASES:
    globals()[f"test_{_name}"] = _make_test(_name)


def test_generated_cases_are_not_all_clamped():
    # The vectors must exercise requantization, not just saturate to the activation range.
    for name in CASES:
        op, _, args, (out_type, _) = case = _generate(name)
        # (Empty windows, one-element rows and very long rows are meant to be flat.)
        if out_type != "b" or any(k in name for k in ("empty", "depth1", "long_row")):
            continue
        out = np.frombuffer(_run_cpython(kernels_py, case), np.int8)
        assert len(np.unique(out)) > 3, f"{name}: only {np.unique(out)}"


# -- whole models -----------------------------------------------------------------------------

SHARED_INPUTS = {"hello_world_int8": 4, "ad01_fc_autoencoder_int8": 3,
                 "kws01_dscnn_int8": 2, "ic01_resnet8_int8": 1}


def _cap_input_size(cap):
    from minerva_packager.capsule.container import read_capsule

    spec = read_capsule(cap).meta["inputs"][0]
    return int(np.prod(spec["shape"])) * (4 if spec["dtype"] == "float32" else 1)


@pytest.mark.parametrize("name", sorted(SHARED_INPUTS))
def test_shared_model_tiers_bit_exact(name, shared_models, micropython, tmp_path):
    cap = tmp_path / f"{name}.cap"
    pack_file(shared_models / f"{name}.tflite", cap)
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    size = _cap_input_size(cap)
    inputs = [rng.integers(0, 256, size, dtype=np.uint8).tobytes()
              for _ in range(SHARED_INPUTS[name])]
    if name == "kws01_dscnn_int8":
        sample = np.load(shared_models / "samples" / "kws01_sample0_int8_49x10.npy")
        inputs[-1] = sample.astype(np.int8).tobytes()
    expected = run_on_cpython(cap, inputs, kernels="python")
    assert run_on_cpython(cap, inputs, kernels="numpy") == expected
    for mp in _micropythons(micropython):
        assert run_on_micropython(mp, cap, inputs, tmp_path, kernels="viper") == expected


_PAGED_SCRIPT = """
import binascii, minerva
m = minerva.load({capsule!r}, kernels="viper", paged=True)
assert m.paged, "no filter was paged"
print("OUT", binascii.hexlify(bytes(m.run(binascii.unhexlify({x!r})))).decode())
"""


@pytest.mark.parametrize("name", ["kws01_dscnn_int8", "ad01_fc_autoencoder_int8"])
def test_viper_paged_weights_bit_exact(name, shared_models, micropython, tmp_path):
    # Paged filters are arena slices read from flash before their op: viper reads them there.
    cap = tmp_path / f"{name}.cap"
    pack_file(shared_models / f"{name}.tflite", cap)
    x = np.random.default_rng(5).integers(0, 256, _cap_input_size(cap), np.uint8).tobytes()
    expected = run_on_cpython(cap, [x], kernels="python")[0]
    out = micropython.run(_PAGED_SCRIPT.format(capsule=str(cap), x=x.hex())).stdout
    assert bytes.fromhex(out.split("OUT ")[1].strip()) == expected


def _op_model_names():
    try:
        from opmodels import OP_MODELS
    except ImportError:
        return []
    return sorted(OP_MODELS)


@pytest.mark.skipif(not _op_model_names(), reason="tests/opmodels.py is not there")
def test_op_models_tiers_bit_exact(micropython, tmp_path):
    from opmodels import build_op_model

    for name in _op_model_names():
        model = build_op_model(name, 0)
        src = tmp_path / f"{name}.tflite"
        src.write_bytes(model.tflite)
        cap = tmp_path / f"{name}.cap"
        pack_file(src, cap)
        inputs = [[np.ascontiguousarray(x).tobytes() for x in xs]
                  for xs in model.inputs(count=2, seed=7)]
        expected = run_on_cpython(cap, inputs, kernels="python")
        assert run_on_cpython(cap, inputs, kernels="numpy") == expected, name
        for mp in _micropythons(micropython):
            assert run_on_micropython(mp, cap, inputs, tmp_path,
                                      kernels="viper") == expected, (name, mp.binary)


_ALLOC_SCRIPT = """
import gc, minerva
m = minerva.load({capsule!r}, kernels="viper")
m.run(bytearray({size}))
before = 0  # the global exists before the count starts
gc.collect()
before = gc.mem_alloc()
m.run()
m.run()
print("ALLOCATED", gc.mem_alloc() - before)
"""


@pytest.mark.parametrize("name", ["kws01_dscnn_int8", "ic01_resnet8_int8",
                                  "ad01_fc_autoencoder_int8"])
def test_viper_run_allocates_nothing(name, shared_models, micropython, tmp_path):
    # On a 32-bit port a value of 2**30 or more crossing a call would be a heap integer.
    cap = tmp_path / f"{name}.cap"
    pack_file(shared_models / f"{name}.tflite", cap)
    script = _ALLOC_SCRIPT.format(capsule=str(cap), size=_cap_input_size(cap))
    for mp in _micropythons(micropython):
        out = mp.run(script, heapsize="4M").stdout
        assert "ALLOCATED 0" in out, f"{mp.binary}: {out}"


def test_numpy_tier_is_not_offered_on_micropython(micropython):
    proc = micropython.run("from minerva.tiers import select_kernels\n"
                           "print(select_kernels(None, 'x')[1])\n"
                           "try:\n    select_kernels('numpy', 'x')\n"
                           "except Exception as e:\n    print('REFUSED', e)\n")
    lines = proc.stdout.splitlines()
    assert lines[0] in ("natmod", "viper")
    assert lines[1].startswith("REFUSED") and "numpy" in lines[1]
