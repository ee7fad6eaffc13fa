"""Keras 3 (TensorFlow backend) adapter: SimpleRNN, LSTM or GRU layers (stacked, optionally
wrapped in Bidirectional) followed by a Dense head.

``build`` makes a functional ``keras.Model`` with inputs (inputs, every initial state) and outputs
(prediction, the top layer's sequence when return_sequences, every final state); ``extract`` reads
any Keras model whose recurrent layers and one Dense layer come in order (a user's Sequential
works); ``run`` calls the model under ``tf.GradientTape`` and returns what TensorFlow computed,
in canonical names.

Keras has no peepholes, projections or run-time forget_bias: ``supports`` says so and ``build``
refuses such specs. ``hard_sigmoid_keras2`` (Keras 2's definition) is passed as a callable, since
Keras 3's own ``hard_sigmoid`` is relu6(x + 3) / 6.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from adapters import tables
from adapters.tf_import import import_tf
from reference.layout import check_params, initial_state_gradient_name, prefix, state_names, state_shapes
from reference.spec import Batch, SequenceSpec

FRAMEWORK = "tensorflow"


def _import() -> tuple[Any, Any]:
    return import_tf()


def versions() -> dict[str, str]:
    tf, keras = _import()
    return {"tensorflow": tf.__version__, "keras": keras.__version__}


def supports(spec: SequenceSpec, masked: bool = False) -> str | None:
    """None when Keras can hold ``spec`` (and run it on batches with ``lengths`` when ``masked``);
    otherwise the reason it cannot."""
    if spec.use_peepholes or spec.proj_size or spec.forget_bias:
        return "Keras layers have no peepholes, projection or run-time forget_bias"
    if masked and spec.bidirectional and any(_returns_sequences(spec, k) != spec.zero_output_for_mask
                                             for k in range(spec.num_layers)):
        return ("Keras Bidirectional forces zero_output_for_mask = return_sequences on its layers, which "
                f"disagrees with zero_output_for_mask={spec.zero_output_for_mask}")
    return None


_KERAS2_HARD_SIGMOID: list = []


def _activation(name: str) -> Any:
    """Keras's name for an activation, or a registered function (Bidirectional re-creates its layers
    from their config, which cannot hold a lambda)."""
    if name != "hard_sigmoid_keras2":
        return name
    if not _KERAS2_HARD_SIGMOID:
        _, keras = _import()

        @keras.saving.register_keras_serializable(package="rnn_verify")
        def hard_sigmoid_keras2(z: Any) -> Any:
            return keras.ops.clip(0.2 * z + 0.5, 0.0, 1.0)
        _KERAS2_HARD_SIGMOID.append(hard_sigmoid_keras2)
    return _KERAS2_HARD_SIGMOID[0]


def _table(layer: Any) -> tuple:
    """The layout table of one Keras recurrent layer (not a Bidirectional wrapper)."""
    _, keras = _import()
    if isinstance(layer, keras.layers.GRU):
        return tables.KERAS_GRU_AFTER if layer.cell.reset_after else tables.KERAS_GRU_BEFORE
    if isinstance(layer, keras.layers.LSTM):
        return tables.KERAS_LSTM
    return tables.KERAS_SIMPLE_RNN


def _recurrent_layers(model: Any, wrappers: list | None = None) -> tuple[list[dict[str, Any]], Any]:
    """[{direction: Keras layer}] per recurrent layer, in order, and the Dense head; the layers as the
    model calls them (Bidirectional wrappers included) are appended to ``wrappers`` when given."""
    _, keras = _import()
    rnn_types = (keras.layers.SimpleRNN, keras.layers.LSTM, keras.layers.GRU)
    layers, denses = [], []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Bidirectional):
            layers.append({"fw": layer.forward_layer, "bw": layer.backward_layer})
        elif isinstance(layer, rnn_types):
            layers.append({"fw": layer})
        if wrappers is not None and isinstance(layer, rnn_types + (keras.layers.Bidirectional,)):
            wrappers.append(layer)
        elif isinstance(layer, keras.layers.Dense):
            denses.append(layer)
    if not layers or len(denses) != 1:
        kinds = [type(l).__name__ for l in model.layers if not isinstance(l, keras.layers.InputLayer)]
        raise ValueError(f"Keras model: expected recurrent layers (SimpleRNN, LSTM, GRU, Bidirectional) and one "
                         f"Dense layer, found {kinds}")
    return layers, denses[0]


def _by_name(layer: Any) -> dict[str, Any]:
    return {v.name: v for v in layer.weights}


def _input_name(state: str) -> str:
    return "init_" + state.replace("/", "_")


def _returns_sequences(spec: SequenceSpec, layer: int) -> bool:
    top = layer == spec.num_layers - 1
    return not top or spec.return_sequences or (spec.bidirectional and spec.last_output == "last_step")


def _apply(spec: SequenceSpec, rnn_layers: list[Any], head: Any, x: Any, inits: dict[str, Any], mask: Any = None,
           detach: Any = lambda t: t) -> tuple[Any, Any, list[Any]]:
    """Call the recurrent layers and the head: (prediction, top sequence, final states in canonical order).

    ``detach`` drops a Keras mask from the head's input, so that no loss applies it (the reference's
    loss averages over every step).
    """
    seq, finals = x, []
    for k, layer in enumerate(rnn_layers):
        s0 = [inits[n] for d in spec.directions for n in state_names(spec, prefix(k, d))]
        out = layer(seq, initial_state=s0) if mask is None else layer(seq, initial_state=s0, mask=mask)
        seq, states = out[0], out[1:]
        finals += states
    hidden = seq
    # The top layer returns its sequence although the head wants one step: last_step of a Bidirectional.
    # Read from the layer, not the spec, so that a model is run as it was built.
    head_in = hidden[:, -1] if not spec.return_sequences and rnn_layers[-1].return_sequences else hidden
    return head(detach(head_in)), hidden, finals


def build(spec: SequenceSpec, params: dict[str, np.ndarray], dtype: str) -> Any:
    """A Keras model holding exactly ``params`` (cast to ``dtype``)."""
    reason = supports(spec)
    if reason:
        raise ValueError(f"Keras cannot build {spec.name!r}: {reason}")
    check_params(spec, params)
    _, keras = _import()
    x = keras.Input((None, spec.input_size), dtype=dtype, name="inputs")
    inits = {n: keras.Input(shape[1:], dtype=dtype, name=_input_name(n)) for n, shape in state_shapes(spec, 1).items()}
    cls = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[spec.cell]
    options: dict[str, Any] = {"activation": _activation(spec.activation), "use_bias": spec.use_bias,
                               "zero_output_for_mask": spec.zero_output_for_mask}
    if spec.cell != "simple_rnn":
        options["recurrent_activation"] = _activation(spec.recurrent_activation)
    if spec.cell == "gru":
        options["reset_after"] = spec.reset_after
    rnn_layers, by_direction = [], []
    for k in range(spec.num_layers):
        def make(d: str) -> Any:
            return cls(spec.hidden_size, return_sequences=_returns_sequences(spec, k), return_state=True,
                       go_backwards=spec.go_backwards or d == "bw", dtype=dtype, name=f"rnn_{k}_{d}", **options)
        if spec.bidirectional:
            layer = keras.layers.Bidirectional(make("fw"), backward_layer=make("bw"), merge_mode=spec.merge_mode,
                                               dtype=dtype, name=f"rnn_{k}")
            by_direction.append({"fw": layer.forward_layer, "bw": layer.backward_layer})
        else:
            layer = make("fw")
            by_direction.append({"fw": layer})
        rnn_layers.append(layer)
    head = keras.layers.Dense(spec.output_size, dtype=dtype, name="head")
    y, hidden, finals = _apply(spec, rnn_layers, head, x, inits)
    outputs = [y] + ([hidden] if spec.return_sequences else []) + finals
    model = keras.Model([x] + list(inits.values()), outputs)
    for k, dirs in enumerate(by_direction):
        for d, layer in dirs.items():
            _assign(layer, _table(layer), params, prefix(k, d), dtype)
    _assign(head, tables.KERAS_DENSE, params, "head", dtype)
    return model


def _assign(layer: Any, table: tuple, params: dict, pre: str, dtype: str) -> None:
    values = tables.join_rows(tables.from_canonical(table, params, pre))
    variables = _by_name(layer)
    tables.check_shapes({n: tuple(v.shape) for n, v in variables.items()}, values, f"Keras layer {layer.name}")
    for name, value in values.items():
        variables[name].assign(value.astype(dtype))


def _to_canonical(table: tuple, arrays: dict[str, np.ndarray], pre: str) -> dict[str, np.ndarray]:
    return tables.to_canonical(table, tables.split_rows(arrays), pre)


def extract(model: Any) -> dict[str, np.ndarray]:
    """The model's weights in the canonical layout, as float64."""
    layers, head = _recurrent_layers(model)
    params: dict[str, np.ndarray] = {}
    for k, dirs in enumerate(layers):
        for d, layer in dirs.items():
            params.update(_to_canonical(_table(layer), {n: v.numpy() for n, v in _by_name(layer).items()},
                                        prefix(k, d)))
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
    """Outputs, final states, loss, accuracy and gradients as TensorFlow computes them.

    The model's layers are called directly (as the model calls them), with a Keras mask built from
    ``batch.lengths`` when the batch has them.
    """
    from reference.model import initial_states, mask_of

    tf, _ = _import()
    masked = batch.lengths is not None
    reason = supports(spec, masked)
    if reason:
        raise ValueError(f"Keras cannot run {spec.name!r}{' on masked batches' if masked else ''}: {reason}")
    wrappers: list[Any] = []
    layers, head = _recurrent_layers(model, wrappers)
    x = tf.constant(batch.inputs, dtype=dtype)
    names = list(state_shapes(spec, 1))
    s0 = [tf.constant(v, dtype=dtype) for v in initial_states(spec, batch).values()]
    mask = tf.constant(mask_of(batch)) if masked else None
    targets = tf.constant(batch.targets, dtype=dtype if spec.loss != "softmax_ce" else "int64")
    sources = {}
    for k, dirs in enumerate(layers):
        for d, layer in dirs.items():
            sources.update({(k, d, n): v for n, v in _by_name(layer).items()})
    sources.update({("head", n): v for n, v in _by_name(head).items()})
    with tf.GradientTape() as tape:
        tape.watch([x] + s0)
        y, hidden, finals = _apply(spec, wrappers, head, x, dict(zip(names, s0)), mask, tf.identity)
        loss, acc = _loss_and_accuracy(spec, y, targets)
    grads = tape.gradient(loss, list(sources.values()) + [x] + s0)
    by_var = dict(zip(sources, grads[:len(sources)]))
    gradient: dict[str, np.ndarray] = {}
    for k, dirs in enumerate(layers):
        for d, layer in dirs.items():
            arrays = {n: by_var[(k, d, n)].numpy() for n in _by_name(layer)}
            gradient.update(_to_canonical(_table(layer), arrays, prefix(k, d)))
    gradient.update(tables.to_canonical(tables.KERAS_DENSE, {n: by_var[("head", n)].numpy() for n in _by_name(head)},
                                        "head"))
    gradient["inputs"] = grads[len(sources)].numpy()
    for n, g in zip(names, grads[len(sources) + 1:]):
        gradient[initial_state_gradient_name(n)] = g.numpy()
    output = {"prediction": y.numpy()}
    if spec.return_sequences:
        output["hidden"] = hidden.numpy()
    return {"output": output, "state": {n: v.numpy() for n, v in zip(names, finals)}, "loss": {"loss": loss.numpy()},
            "accuracy": {"accuracy": acc.numpy()}, "gradient": gradient}
