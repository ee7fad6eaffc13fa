"""Keras 3 (TensorFlow backend) adapter: a SimpleRNN layer followed by a Dense head.

``build`` makes a functional ``keras.Model`` with inputs (inputs, initial_state) and outputs
(prediction, rnn output, final state); ``extract`` reads any Keras model holding one SimpleRNN and one
Dense layer (a user's Sequential works); ``run`` calls those layers under ``tf.GradientTape`` and
returns what TensorFlow computed, in canonical names.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from adapters import tables
from adapters.tf_import import import_tf
from reference.layout import RNN_PREFIX, check_params
from reference.spec import Batch, SequenceSpec

FRAMEWORK = "tensorflow"


def _import() -> tuple[Any, Any]:
    return import_tf()


def versions() -> dict[str, str]:
    tf, keras = _import()
    return {"tensorflow": tf.__version__, "keras": keras.__version__}


def _layers(model: Any) -> tuple[Any, Any]:
    """The model's SimpleRNN and Dense layers; ValueError when it holds anything else."""
    _, keras = _import()
    rnns = [l for l in model.layers if isinstance(l, keras.layers.SimpleRNN)]
    denses = [l for l in model.layers if isinstance(l, keras.layers.Dense)]
    if len(rnns) != 1 or len(denses) != 1:
        kinds = [type(l).__name__ for l in model.layers if not isinstance(l, keras.layers.InputLayer)]
        raise ValueError(f"Keras model: expected one SimpleRNN and one Dense layer, found {kinds}")
    return rnns[0], denses[0]


def _by_name(layer: Any) -> dict[str, Any]:
    return {v.name: v for v in layer.weights}


def build(spec: SequenceSpec, params: dict[str, np.ndarray], dtype: str) -> Any:
    """A Keras model holding exactly ``params`` (cast to ``dtype``)."""
    check_params(spec, params)
    _, keras = _import()
    x = keras.Input((None, spec.input_size), dtype=dtype, name="inputs")
    h0 = keras.Input((spec.hidden_size,), dtype=dtype, name="initial_state")
    rnn = keras.layers.SimpleRNN(spec.hidden_size, activation=spec.activation, use_bias=spec.use_bias,
                                 return_sequences=spec.return_sequences, return_state=True,
                                 go_backwards=spec.go_backwards, dtype=dtype, name="rnn")
    head = keras.layers.Dense(spec.output_size, dtype=dtype, name="head")
    seq, h_t = rnn(x, initial_state=h0)
    model = keras.Model([x, h0], [head(seq), seq, h_t])
    for layer, table, prefix in ((rnn, tables.KERAS_SIMPLE_RNN, RNN_PREFIX), (head, tables.KERAS_DENSE, "head")):
        values = tables.from_canonical(table, params, prefix)
        variables = _by_name(layer)
        tables.check_shapes({n: tuple(v.shape) for n, v in variables.items()}, values, f"Keras layer {layer.name}")
        for name, value in values.items():
            variables[name].assign(value.astype(dtype))
    return model


def extract(model: Any) -> dict[str, np.ndarray]:
    """The model's weights in the canonical layout, as float64."""
    rnn, head = _layers(model)
    params = tables.to_canonical(tables.KERAS_SIMPLE_RNN, {n: v.numpy() for n, v in _by_name(rnn).items()}, RNN_PREFIX)
    params.update(tables.to_canonical(tables.KERAS_DENSE, {n: v.numpy() for n, v in _by_name(head).items()}, "head"))
    return params


def _loss_and_accuracy(spec: SequenceSpec, y: Any, targets: Any) -> tuple[Any, Any]:
    tf, keras = _import()
    ops = keras.ops
    if spec.loss == "mse":
        loss = keras.losses.MeanSquaredError(dtype=y.dtype)(targets, y)
    elif spec.loss == "softmax_ce":
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, dtype=y.dtype)(targets, y)
    else:  # the article's clipped log loss, op for op
        p = ops.softmax(y, axis=-1)
        loss = -ops.mean(ops.sum(ops.log(ops.clip(p, 1e-10, 1.0)) * targets, axis=-1))
    if spec.accuracy == "argmax":
        labels = targets if spec.loss == "softmax_ce" else ops.argmax(targets, axis=-1)
        hits = ops.equal(ops.argmax(y, axis=-1), ops.cast(labels, "int64"))
    else:
        hits = ops.less(ops.abs(y - targets), spec.accuracy_tol)
    return loss, ops.mean(ops.cast(hits, "float64"))


def run(model: Any, spec: SequenceSpec, batch: Batch, dtype: str) -> dict[str, dict[str, np.ndarray]]:
    """Outputs, final state, loss, accuracy and gradients as TensorFlow computes them."""
    tf, _ = _import()
    rnn, head = _layers(model)
    x = tf.constant(batch.inputs, dtype=dtype)
    b = batch.inputs.shape[0]
    h0_np = batch.initial_state if batch.initial_state is not None else np.zeros((b, spec.hidden_size))
    h0 = tf.constant(h0_np, dtype=dtype)
    targets = tf.constant(batch.targets, dtype=dtype if spec.loss != "softmax_ce" else "int64")
    rnn_vars, head_vars = _by_name(rnn), _by_name(head)
    with tf.GradientTape() as tape:
        tape.watch([x, h0])
        seq, h_t = rnn(x, initial_state=h0)
        y = head(seq)
        loss, acc = _loss_and_accuracy(spec, y, targets)
    sources = {**{("rnn", n): v for n, v in rnn_vars.items()}, **{("head", n): v for n, v in head_vars.items()},
               ("in", "x"): x, ("in", "h0"): h0}
    grads = dict(zip(sources, tape.gradient(loss, list(sources.values()))))
    gradient = tables.to_canonical(tables.KERAS_SIMPLE_RNN, {n: grads[("rnn", n)].numpy() for n in rnn_vars}, RNN_PREFIX)
    gradient.update(tables.to_canonical(tables.KERAS_DENSE, {n: grads[("head", n)].numpy() for n in head_vars}, "head"))
    gradient["inputs"] = grads[("in", "x")].numpy()
    gradient[f"{RNN_PREFIX}/initial_state"] = grads[("in", "h0")].numpy()
    output = {"prediction": y.numpy()}
    if spec.return_sequences:
        output["hidden"] = seq.numpy()
    return {"output": output, "state": {RNN_PREFIX: h_t.numpy()}, "loss": {"loss": loss.numpy()},
            "accuracy": {"accuracy": acc.numpy()}, "gradient": gradient}
