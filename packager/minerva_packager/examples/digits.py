"""The example model: an 8x8 handwritten-digit classifier, trained and quantized in numpy.

A 64-32-10 multilayer perceptron (ReLU, softmax) is trained with plain numpy (Adam, cross
entropy) on scikit-learn's bundled digits data set (1,797 8x8 images, 0..16 grey levels), with a
seeded split into training and held-out samples. It is then quantized after training as the
TFLite converter does it: int8 weights with one scale per output channel, int32 biases, int8
activations whose ranges are calibrated on the training set, and an int8 softmax output
(scale 1/256, zero point -128). :func:`build` writes ``digits.tflite`` (int8 input and output)
with :mod:`minerva_packager.capsule.tflite_writer` and measures the held-out accuracy of the float
network and of the int8 model in TFLite's reference kernels (and TFLite Micro when installed).

Input: the 64 pixels scaled to ``[0, 1]`` (pixel / 16), quantized with scale 1/255 and zero
point -128, i.e. ``round(pixel * 255 / 16) - 128``: see :func:`quantize_pixels`.
"""

import json
from pathlib import Path

import numpy as np

from ..capsule.tflite_writer import (
    TfliteBuilder,
    activation_quantization,
    quantize_bias,
    quantize_weights,
    symmetric_scales,
)
from ..errors import PackagerError

SEED = 20261123
HIDDEN = 32
CLASSES = 10
HELDOUT_FRACTION = 0.25
EPOCHS = 60
BATCH = 32
LEARNING_RATE = 3e-3
WEIGHT_DECAY = 1e-4
INPUT_SCALE = 1.0 / 255.0
INPUT_ZERO_POINT = -128


def load_split(seed=SEED):
    """``(x_train, y_train, x_heldout, y_heldout)``: pixels scaled to [0, 1], int labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_heldout = int(round(len(x) * HELDOUT_FRACTION))
    heldout, train = order[:n_heldout], order[n_heldout:]
    return x[train], y[train], x[heldout], y[heldout]


def quantize_pixels(x):
    """Float inputs in [0, 1] -> the model's int8 input."""
    q = np.round(np.asarray(x, np.float64) / INPUT_SCALE) + INPUT_ZERO_POINT
    return np.clip(q, -128, 127).astype(np.int8)


class Mlp:
    """The float network: ``softmax(W2 relu(W1 x + b1) + b2)``, weights as [out, in]."""

    def __init__(self, rng):
        self.w1 = rng.normal(0, np.sqrt(2.0 / 64), (HIDDEN, 64)).astype(np.float32)
        self.b1 = np.zeros(HIDDEN, np.float32)
        self.w2 = rng.normal(0, np.sqrt(1.0 / HIDDEN), (CLASSES, HIDDEN)).astype(np.float32)
        self.b2 = np.zeros(CLASSES, np.float32)

    def params(self):
        return [self.w1, self.b1, self.w2, self.b2]

    def forward(self, x):
        """``(hidden activations, logits)`` for a batch ``x`` [N, 64]."""
        hidden = np.maximum(x @ self.w1.T + self.b1, 0.0)
        return hidden, hidden @ self.w2.T + self.b2

    def predict(self, x):
        return np.argmax(self.forward(x)[1], axis=1)

    def gradients(self, x, y):
        hidden, logits = self.forward(x)
        logits = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        d_logits = probs
        d_logits[np.arange(len(y)), y] -= 1.0
        d_logits /= len(y)
        d_hidden = (d_logits @ self.w2) * (hidden > 0)
        return [d_hidden.T @ x + WEIGHT_DECAY * self.w1, d_hidden.sum(axis=0),
                d_logits.T @ hidden + WEIGHT_DECAY * self.w2, d_logits.sum(axis=0)]


def train(x, y, seed=SEED, epochs=EPOCHS):
    """Train an :class:`Mlp` with Adam on mini-batches; deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    net = Mlp(rng)
    params = net.params()
    first = [np.zeros_like(p) for p in params]
    second = [np.zeros_like(p) for p in params]
    beta1, beta2, step = 0.9, 0.999, 0
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), BATCH):
            batch = order[start:start + BATCH]
            step += 1
            for p, g, m, v in zip(params, net.gradients(x[batch], y[batch]), first, second):
                m *= beta1
                m += (1 - beta1) * g
                v *= beta2
                v += (1 - beta2) * g * g
                m_hat = m / (1 - beta1 ** step)
                v_hat = v / (1 - beta2 ** step)
                p -= (LEARNING_RATE * m_hat / (np.sqrt(v_hat) + 1e-8)).astype(np.float32)
    return net


def to_tflite(net, x_calibration):
    """Quantize ``net`` (activation ranges from ``x_calibration``) and return .tflite bytes."""
    hidden, logits = net.forward(x_calibration)
    hidden_q = activation_quantization(0.0, hidden.max())
    logits_q = activation_quantization(logits.min(), logits.max())

    b = TfliteBuilder("minerva example: digits 64-32-10 MLP, int8")
    x = b.tensor("pixels", [1, 64], "int8", scale=INPUT_SCALE, zero_point=INPUT_ZERO_POINT)
    h = b.tensor("hidden", [1, HIDDEN], "int8", scale=hidden_q[0], zero_point=hidden_q[1])
    z = b.tensor("logits", [1, CLASSES], "int8", scale=logits_q[0], zero_point=logits_q[1])
    p = b.tensor("probabilities", [1, CLASSES], "int8", scale=1.0 / 256, zero_point=-128)
    layers = [(x, INPUT_SCALE, net.w1, net.b1, h, "RELU", "dense1"),
              (h, hidden_q[0], net.w2, net.b2, z, "NONE", "dense2")]
    for source, source_scale, w, bias, target, activation, name in layers:
        scales = symmetric_scales(w, axis=0)
        w_q = b.tensor(f"{name}/weights", w.shape, "int8", data=quantize_weights(w, scales, 0),
                       scale=scales, zero_point=0, quantized_dimension=0)
        bias_q, bias_scales = quantize_bias(bias, source_scale, scales)
        b_q = b.tensor(f"{name}/bias", [len(bias)], "int32", data=bias_q, scale=bias_scales,
                       zero_point=0)
        b.op("FULLY_CONNECTED", [source, w_q, b_q], [target], activation=activation)
    b.op("SOFTMAX", [z], [p], beta=1.0)
    return b.build([x], [p])


def int8_accuracy(model_bytes, x_int8, y, interpreter="litert"):
    """Held-out accuracy of the int8 model in TFLite's reference kernels (``"litert"``,
    ``OpResolverType.BUILTIN_REF``) or in TFLite Micro (``"tflm"``)."""
    predictions = []
    if interpreter == "litert":
        try:
            from ai_edge_litert.interpreter import Interpreter, OpResolverType
        except ImportError:
            raise PackagerError("ai-edge-litert is not installed",
                                "pip install -e '.[test]' to measure int8 accuracy")
        it = Interpreter(model_content=model_bytes,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        it.allocate_tensors()
        inp, out = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
        for sample in x_int8:
            it.set_tensor(inp, sample.reshape(1, 64))
            it.invoke()
            predictions.append(int(np.argmax(it.get_tensor(out))))
    else:
        from tflite_micro.python.tflite_micro import runtime

        it = runtime.Interpreter.from_bytes(model_bytes, arena_size=64 * 1024)
        for sample in x_int8:
            it.set_input(sample.reshape(1, 64), 0)
            it.invoke()
            predictions.append(int(np.argmax(it.get_output(0))))
    return float(np.mean(np.asarray(predictions) == y))


def build(out_dir):
    """Train, quantize and write the example into ``out_dir``; return paths and figures.

    Writes ``digits.tflite``, ``digits_heldout_x.npy`` (int8 [N, 64], ready for the model's
    input), ``digits_heldout_y.npy`` (uint8 labels) and ``digits.json`` (the returned figures).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    x_train, y_train, x_heldout, y_heldout = load_split()
    net = train(x_train, y_train)
    model = to_tflite(net, x_train)
    x_heldout_q = quantize_pixels(x_heldout)

    paths = {"tflite": out_dir / "digits.tflite",
             "heldout_x": out_dir / "digits_heldout_x.npy",
             "heldout_y": out_dir / "digits_heldout_y.npy",
             "report": out_dir / "digits.json"}
    paths["tflite"].write_bytes(model)
    np.save(paths["heldout_x"], x_heldout_q)
    np.save(paths["heldout_y"], y_heldout.astype(np.uint8))

    figures = {
        "train_samples": len(x_train),
        "heldout_samples": len(x_heldout),
        "float_accuracy": float(np.mean(net.predict(x_heldout) == y_heldout)),
        "int8_accuracy": int8_accuracy(model, x_heldout_q, y_heldout, "litert"),
        "input_scale": INPUT_SCALE,
        "input_zero_point": INPUT_ZERO_POINT,
        "tflite_bytes": len(model),
    }
    try:
        figures["int8_accuracy_tflm"] = int8_accuracy(model, x_heldout_q, y_heldout, "tflm")
    except ImportError:
        pass
    paths["report"].write_text(json.dumps(figures, indent=2) + "\n")
    return {**{k: str(v) for k, v in paths.items()}, **figures}
