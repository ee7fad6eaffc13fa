"""TF1 adapter: the graph-mode cells TensorFlow 2.21 still bundles, run in a ``tf.Graph`` and a
``tf.compat.v1.Session``.

Cells come from ``tensorflow.python.keras.layers.legacy_rnn.rnn_cell_impl`` (the public
``tf.compat.v1.nn.rnn_cell`` names refuse under Keras 3): BasicRNNCell, BasicLSTMCell (LSTMCell when
the spec has peepholes or a projection, or when asked), GRUCell; stacked forward layers go through
MultiRNNCell and ``static_rnn``, bidirectional layers through ``static_bidirectional_rnn`` one layer
at a time (the output of layer k, merged, feeds layer k+1). ``sequence_length`` carries variable
lengths. Gradients come from ``tf.gradients``.

TF1 cells always have biases, use sigmoid gates, and reset the GRU before its matmul; ``supports``
refuses specs outside that. LSTM states are TF1's LSTMStateTuple(c, h), or concat([c, h]) with
``state_is_tuple=False``; the adapter maps both to the canonical ``rnn/k/d`` (h) and ``rnn/k/d/c``.
``build`` returns a ``Tf1Model``; its graph gains the ops for a sequence length on first use.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adapters import tf1_tables, tables
from adapters.tf_import import import_tf
from reference.layout import check_params, initial_state_gradient_name, prefix, state_names, state_shapes
from reference.spec import Batch, SequenceSpec

FRAMEWORK = "tf1"
LSTM_CELLS = ("BasicLSTMCell", "LSTMCell")


def _tf() -> Any:
    return import_tf()[0]


def _cells_module() -> Any:
    tf = _tf()
    tf.get_logger().setLevel("ERROR")  # the v1 APIs log a deprecation notice per call
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from tensorflow.python.keras.layers.legacy_rnn import rnn_cell_impl
    return rnn_cell_impl


def versions() -> dict[str, str]:
    return {"tensorflow (tf1 graph cells)": _tf().__version__}


def supports(spec: SequenceSpec, masked: bool = False) -> str | None:
    """None when TF1 cells can hold ``spec`` (and run it on batches with ``lengths`` when ``masked``);
    otherwise the reason they cannot."""
    if masked and not spec.zero_output_for_mask:
        return "sequence_length zeroes the outputs of padded steps (zero_output_for_mask=True only)"
    if masked and spec.go_backwards:
        return "reversing a padded input list puts the padding first, which sequence_length cannot express"
    if not spec.use_bias:
        return "TF1 cells always have a bias"
    if spec.cell in ("lstm", "gru") and spec.recurrent_activation != "sigmoid":
        return "TF1 LSTM and GRU cells use sigmoid gates"
    if spec.cell == "gru" and spec.reset_after:
        return "TF1 GRUCell resets before the recurrent matmul (reset_after=False)"
    return None


def _act(name: str) -> Any:
    tf = _tf()
    return {"tanh": tf.tanh, "relu": tf.nn.relu, "sigmoid": tf.sigmoid, "linear": tf.identity,
            "hard_sigmoid": lambda z: tf.clip_by_value(z + 3.0, 0.0, 6.0) / 6.0,
            "hard_sigmoid_keras2": lambda z: tf.clip_by_value(0.2 * z + 0.5, 0.0, 1.0)}[name]


def _merge(mode: str, fw: Any, bw: Any) -> Any:
    tf = _tf()
    if mode == "concat":
        return tf.concat([fw, bw], axis=-1)
    if mode == "sum":
        return fw + bw
    if mode == "mul":
        return fw * bw
    return (fw + bw) / 2


@dataclass
class Tf1Model:
    """A TF1 graph holding the cells and the head, a session with their values, and per-length ops."""

    spec: SequenceSpec
    dtype: str
    graph: Any
    session: Any
    cells: dict[tuple[int, str], Any]
    head: dict[str, Any]
    lstm_cell: str
    state_is_tuple: bool
    ops: dict[tuple[int, bool], dict] = field(default_factory=dict)

    def variables(self) -> dict[tuple[int, str], dict[str, Any]]:
        """Per (layer, direction): variable name relative to the cell -> variable."""
        out = {}
        for key, cell in self.cells.items():
            out[key] = {v.name.split(f"{cell.name}/", 1)[1].rsplit(":", 1)[0]: v for v in cell.weights}
        return out


def _make_cell(spec: SequenceSpec, lstm_cell: str, state_is_tuple: bool, name: str, dtype: str) -> Any:
    r = _cells_module()
    act = _act(spec.activation)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if spec.cell == "simple_rnn":
            return r.BasicRNNCell(spec.hidden_size, activation=act, name=name, dtype=dtype)
        if spec.cell == "gru":
            return r.GRUCell(spec.hidden_size, activation=act, name=name, dtype=dtype)
        if lstm_cell == "BasicLSTMCell":
            return r.BasicLSTMCell(spec.hidden_size, forget_bias=spec.forget_bias, state_is_tuple=state_is_tuple,
                                   activation=act, name=name, dtype=dtype)
        return r.LSTMCell(spec.hidden_size, use_peepholes=spec.use_peepholes, num_proj=spec.proj_size or None,
                          forget_bias=spec.forget_bias, state_is_tuple=state_is_tuple, activation=act, name=name,
                          dtype=dtype)


def _tf1_state(model: Tf1Model, pre: str, placeholders: dict) -> Any:
    """TF1's state for one cell from the canonical state placeholders."""
    r = _cells_module()
    if model.spec.cell != "lstm":
        return placeholders[pre]
    h, c = placeholders[pre], placeholders[pre + "/c"]
    return r.LSTMStateTuple(c, h) if model.state_is_tuple else _tf().concat([c, h], axis=1)


def _canonical_state(model: Tf1Model, pre: str, state: Any) -> dict[str, Any]:
    if model.spec.cell != "lstm":
        return {pre: state}
    if model.state_is_tuple:
        return {pre: state.h, pre + "/c": state.c}
    n = model.spec.hidden_size
    return {pre: state[:, n:], pre + "/c": state[:, :n]}


def _graph_ops(model: Tf1Model, steps: int, with_lengths: bool) -> dict:
    """Placeholders, outputs, loss, accuracy and gradients for sequences of ``steps`` steps (cached)."""
    key = (steps, with_lengths)
    if key in model.ops:
        return model.ops[key]
    tf = _tf()
    r = _cells_module()
    spec, dt = model.spec, model.dtype
    v1 = tf.compat.v1
    with model.graph.as_default(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x = v1.placeholder(dt, (None, steps, spec.input_size))
        states = {n: v1.placeholder(dt, (None,) + s[1:]) for n, s in state_shapes(spec, 1).items()}
        lengths = v1.placeholder(tf.int32, (None,)) if with_lengths else None
        seq = tf.unstack(x, axis=1)
        if spec.go_backwards:
            seq = seq[::-1]
        finals: dict[str, Any] = {}
        w = spec.output_width
        if spec.bidirectional:
            for k in range(spec.num_layers):
                outs, s_fw, s_bw = v1.nn.static_bidirectional_rnn(
                    model.cells[(k, "fw")], model.cells[(k, "bw")], seq,
                    initial_state_fw=_tf1_state(model, prefix(k, "fw"), states),
                    initial_state_bw=_tf1_state(model, prefix(k, "bw"), states),
                    sequence_length=lengths, scope=f"bidirectional_{k}")
                fw_outs, bw_outs = [o[:, :w] for o in outs], [o[:, w:] for o in outs]
                seq = [_merge(spec.merge_mode, f, b) for f, b in zip(fw_outs, bw_outs)]
                finals.update(_canonical_state(model, prefix(k, "fw"), s_fw))
                finals.update(_canonical_state(model, prefix(k, "bw"), s_bw))
        else:
            cells = [model.cells[(k, "fw")] for k in range(spec.num_layers)]
            init = [_tf1_state(model, prefix(k, "fw"), states) for k in range(spec.num_layers)]
            if spec.num_layers == 1:
                outs, s = v1.nn.static_rnn(cells[0], seq, initial_state=init[0], sequence_length=lengths, scope="rnn")
                per_layer = [s]
            else:
                stack = r.MultiRNNCell(cells, state_is_tuple=True)
                outs, s = v1.nn.static_rnn(stack, seq, initial_state=tuple(init), sequence_length=lengths,
                                           scope="rnn")
                per_layer = list(s)
            seq = outs
            for k, s_k in enumerate(per_layer):
                finals.update(_canonical_state(model, prefix(k, "fw"), s_k))
        if spec.return_sequences:
            head_in = tf.stack(seq, axis=1)
        elif spec.bidirectional and spec.last_output == "final":
            head_in = _merge(spec.merge_mode, fw_outs[-1], bw_outs[0])
        else:  # static_bidirectional_rnn(...)[0][-1]: the backward half has seen only the last input
            head_in = seq[-1]
        y = tf.tensordot(head_in, model.head["kernel"], axes=1) + model.head["bias"]
        if spec.loss == "softmax_ce":
            targets = v1.placeholder(tf.int64, (None,) * (y.shape.ndims - 1))
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=y))
        else:
            targets = v1.placeholder(dt, (None,) * y.shape.ndims)
            if spec.loss == "mse":
                loss = tf.reduce_mean(tf.square(y - targets))
            else:  # the article's clipped log loss, op for op
                loss = -tf.reduce_mean(tf.reduce_sum(tf.math.log(tf.clip_by_value(tf.nn.softmax(y), 1e-10, 1.0))
                                                     * targets, axis=-1))
        if spec.accuracy == "argmax":
            labels = targets if spec.loss == "softmax_ce" else tf.argmax(targets, axis=-1)
            hits = tf.equal(tf.argmax(y, axis=-1), labels)
        else:
            hits = tf.less(tf.abs(y - targets), spec.accuracy_tol)
        acc = tf.reduce_mean(tf.cast(hits, tf.float64))
        variables = model.variables()
        sources = [(("cell", kd, n), v) for kd, vs in variables.items() for n, v in vs.items()]
        sources += [(("head", n), v) for n, v in model.head.items()]
        sources += [(("inputs",), x)] + [(("state", n), p) for n, p in states.items()]
        grads = tf.gradients(loss, [s for _, s in sources])
    # "hidden": the top layer's output the head reads, its sequence or its last output
    ops = {"x": x, "states": states, "lengths": lengths, "targets": targets, "y": y, "hidden": head_in,
           "finals": finals, "loss": loss, "acc": acc, "grads": dict(zip([k for k, _ in sources], grads))}
    model.ops[key] = ops
    return ops


def build(spec: SequenceSpec, params: dict[str, np.ndarray], dtype: str, lstm_cell: str | None = None,
          state_is_tuple: bool = True) -> Tf1Model:
    """A TF1 graph and session holding exactly ``params`` (cast to ``dtype``).

    ``lstm_cell``: "BasicLSTMCell" (default without peepholes or projection) or "LSTMCell".
    ``state_is_tuple``: LSTM states as LSTMStateTuple(c, h), or as one tensor concat([c, h], axis=1).
    """
    if lstm_cell not in (None, *LSTM_CELLS):
        raise ValueError(f"unknown TF1 LSTM cell {lstm_cell!r}; expected one of: {', '.join(LSTM_CELLS)}")
    reason = supports(spec)
    if reason:
        raise ValueError(f"TF1 cells cannot build {spec.name!r}: {reason}")
    check_params(spec, params)
    if lstm_cell is None:
        lstm_cell = "LSTMCell" if spec.use_peepholes or spec.proj_size else "BasicLSTMCell"
    if lstm_cell == "BasicLSTMCell" and (spec.use_peepholes or spec.proj_size):
        raise ValueError("BasicLSTMCell has no peepholes or projection; use LSTMCell")
    tf = _tf()
    graph = tf.Graph()
    with graph.as_default():
        cells = {(k, d): _make_cell(spec, lstm_cell, state_is_tuple, f"cell_{k}_{d}", dtype)
                 for k in range(spec.num_layers) for d in spec.directions}
        head = {"kernel": tf.compat.v1.Variable(np.zeros((spec.merged_width, spec.output_size), dtype), name="head/kernel"),
                "bias": tf.compat.v1.Variable(np.zeros(spec.output_size, dtype), name="head/bias")}
        session = tf.compat.v1.Session(graph=graph)
    model = Tf1Model(spec, dtype, graph, session, cells, head, lstm_cell, state_is_tuple)
    with graph.as_default(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for (k, _), cell in cells.items():  # create the variables now; static_rnn reuses built cells
            cell.build(tf.TensorShape((None, spec.input_size if k == 0 else spec.merged_width)))
        session.run(tf.compat.v1.global_variables_initializer())
        table = tf1_tables.TABLES[spec.cell]
        for (k, d), vs in model.variables().items():
            d_in = spec.input_size if k == 0 else spec.merged_width
            values = tf1_tables.scatter(table, params, {n: tuple(v.shape) for n, v in vs.items()}, d_in, prefix(k, d))
            for n, value in values.items():
                vs[n].load(value.astype(dtype), session)
        for n, value in tables.from_canonical(tables.KERAS_DENSE, params, "head").items():
            model.head[n].load(value.astype(dtype), session)
    return model


def _canonical(model: Tf1Model, arrays: dict[tuple[int, str], dict[str, np.ndarray]],
               head: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    spec = model.spec
    out: dict[str, np.ndarray] = {}
    for (k, d), vs in arrays.items():
        d_in = spec.input_size if k == 0 else spec.merged_width
        out.update(tf1_tables.gather(tf1_tables.TABLES[spec.cell], vs, d_in, prefix(k, d)))
    out.update(tables.to_canonical(tables.KERAS_DENSE, head, "head"))
    return out


def extract(model: Tf1Model) -> dict[str, np.ndarray]:
    """The graph's variables in the canonical layout, as float64."""
    variables = model.variables()
    values = model.session.run({kd: vs for kd, vs in variables.items()} | {"head": model.head})
    head = values.pop("head")
    return _canonical(model, values, head)


def run(model: Tf1Model, spec: SequenceSpec, batch: Batch, dtype: str) -> dict[str, dict[str, np.ndarray]]:
    """Outputs, final states, loss, accuracy and gradients as the TF1 graph computes them."""
    from reference.model import initial_states

    lengths = batch.lengths
    reason = supports(spec, lengths is not None)
    if reason:
        raise ValueError(f"TF1 cells cannot run {spec.name!r}{' on masked batches' if lengths is not None else ''}: "
                         f"{reason}")
    ops = _graph_ops(model, batch.inputs.shape[1], lengths is not None)
    feed = {ops["x"]: batch.inputs.astype(dtype), ops["targets"]: batch.targets if spec.loss == "softmax_ce"
            else batch.targets.astype(dtype)}
    feed.update({ops["states"][n]: v.astype(dtype) for n, v in initial_states(spec, batch).items()})
    if lengths is not None:
        feed[ops["lengths"]] = np.asarray(lengths, np.int32)
    fetch = {k: ops[k] for k in ("y", "hidden", "finals", "loss", "acc")}
    fetch["grads"] = ops["grads"]
    got = model.session.run(fetch, feed)
    g = got["grads"]
    cells: dict[tuple[int, str], dict[str, np.ndarray]] = {}
    for key, value in g.items():
        if key[0] == "cell":
            cells.setdefault(key[1], {})[key[2]] = value
    gradient = _canonical(model, cells, {n: g[("head", n)] for n in model.head})
    gradient["inputs"] = g[("inputs",)]
    for n in state_shapes(spec, 1):
        gradient[initial_state_gradient_name(n)] = g[("state", n)]
    output = {"prediction": got["y"], "hidden": got["hidden"]}
    return {"output": output, "state": {n: got["finals"][n] for n in state_shapes(spec, 1)},
            "loss": {"loss": got["loss"]}, "accuracy": {"accuracy": got["acc"]}, "gradient": gradient}
