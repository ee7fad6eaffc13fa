"""Keras adapter for the article's models (Keras 3 or 2): TF1's cells and AttentionCellWrapper as Keras layers.

TensorFlow 2 has no AttentionCellWrapper (tf.contrib is gone). ``AttentionCellWrapper`` here is a
Keras layer that wraps a cell layer and computes what TF1's did (reference/attention_wrapper.py has
the equations); ``Linear`` is TF1's ``_Linear`` (one kernel over the concatenated arguments). Every
variable is created in ``__init__``, in TF1's order, so ``model.weights`` lists the 22 (or 6)
variables in the article's order. The models run the greedy decoding loop (or teacher forcing) in
Python, unrolled when traced: ``run`` computes outputs, loss and gradients in a ``tf.function`` kept with the
model, ``train`` runs plain SGD in one.

``variant`` builds a deliberately broken model for the verifier's own tests: ``window_lag`` appends
each step's output to the attention window one step late; ``drop_attention_state`` starts the
decoder from the encoder's cell state with zero attns and window; ``whole_backward`` feeds the
bidirectional classifier the backward state after the whole reversed sequence (Keras's
``Bidirectional`` semantics) instead of TF1's backward output at the last input.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np

from adapters import keras_compat
from adapters import seq2seq_tables as st
from adapters.keras_optim import global_norm
from adapters.keras_optim import optimizer as _optimizer
from adapters.keras_stack import without_graph_rewrites
from adapters.tf_import import import_tf
from reference.seq2seq import check_params
from reference.seq2seq_spec import Seq2SeqBatch, Seq2SeqSpec

FRAMEWORK = "tensorflow"
VARIANTS = ("", "window_lag", "drop_attention_state", "whole_backward")


def versions() -> dict[str, str]:
    tf, keras = import_tf()
    return {"tensorflow": tf.__version__, "keras": keras.__version__}


@functools.cache
def _classes() -> dict[str, Any]:
    """Layer classes, defined on first use so that importing this module does not import TensorFlow."""
    _, keras = import_tf()
    ops = keras_compat.ops()  # Keras 2 has no keras.ops: the same TensorFlow ops by the same names
    init = keras.initializers.RandomUniform(-0.1, 0.1)

    class Linear(keras.layers.Layer):
        """TF1 ``_Linear``: concat(args) @ kernel + bias."""

        def __init__(self, n_in: int, n_out: int, **kw: Any) -> None:
            super().__init__(**kw)
            self.kernel = self.add_weight(shape=(n_in, n_out), initializer=init, name="kernel")
            self.bias = self.add_weight(shape=(n_out,), initializer="zeros", name="bias")

        def call(self, *args: Any) -> Any:
            x = args[0] if len(args) == 1 else ops.concatenate(list(args), axis=-1)
            return ops.matmul(x, self.kernel) + self.bias

    class BasicRNNCell(keras.layers.Layer):
        """TF1 BasicRNNCell: h = tanh(concat([x, h]) @ kernel + bias)."""

        def __init__(self, input_size: int, units: int, **kw: Any) -> None:
            super().__init__(**kw)
            self.units = units
            self.kernel = self.add_weight(shape=(input_size + units, units), initializer=init, name="kernel")
            self.bias = self.add_weight(shape=(units,), initializer="zeros", name="bias")

        def zero_state(self, batch: Any, dtype: str) -> tuple:
            return (ops.zeros((batch, self.units), dtype),)

        def call(self, x: Any, state: tuple) -> tuple[Any, tuple]:
            h = ops.tanh(ops.matmul(ops.concatenate([x, state[0]], axis=-1), self.kernel) + self.bias)
            return h, (h,)

    class BasicLSTMCell(keras.layers.Layer):
        """TF1 BasicLSTMCell: gates i, j, f, o from one kernel over concat([x, h]); state (c, h);
        ``forget_bias`` added to f at run time."""

        def __init__(self, input_size: int, units: int, forget_bias: float = 1.0, **kw: Any) -> None:
            super().__init__(**kw)
            self.units, self.forget_bias = units, forget_bias
            self.kernel = self.add_weight(shape=(input_size + units, 4 * units), initializer=init, name="kernel")
            self.bias = self.add_weight(shape=(4 * units,), initializer="zeros", name="bias")

        def zero_state(self, batch: Any, dtype: str) -> tuple:
            return (ops.zeros((batch, self.units), dtype), ops.zeros((batch, self.units), dtype))

        def call(self, x: Any, state: tuple) -> tuple[Any, tuple]:
            c, h = state
            z = ops.matmul(ops.concatenate([x, h], axis=-1), self.kernel) + self.bias
            i, j, f, o = ops.split(z, 4, axis=-1)
            c = c * ops.sigmoid(f + self.forget_bias) + ops.sigmoid(i) * ops.tanh(j)
            h = ops.tanh(c) * ops.sigmoid(o)
            return h, (c, h)

    class Attention(keras.layers.Layer):
        """The wrapper's scoring: K (TF's attn_w, a 1x1 conv kernel), attn_v and the query projection."""

        def __init__(self, query_size: int, attn_size: int, attn_vec: int, **kw: Any) -> None:
            super().__init__(**kw)
            self.attn_w = self.add_weight(shape=(1, 1, attn_size, attn_vec), initializer=init, name="attn_w")
            self.attn_v = self.add_weight(shape=(attn_vec,), initializer=init, name="attn_v")
            self.query = Linear(query_size, attn_vec, name="query", dtype=self.dtype_policy)

        def call(self, s: Any, window: Any) -> Any:
            features = ops.matmul(window, self.attn_w[0, 0])               # (B, L, V): the 1x1 conv
            y = ops.expand_dims(self.query(s), 1)
            e = ops.sum(self.attn_v * ops.tanh(features + y), axis=-1)     # (B, L)
            alpha = ops.softmax(e, axis=-1)
            return ops.sum(ops.expand_dims(alpha, -1) * window, axis=1)  # reads the old window

    class AttentionCellWrapper(keras.layers.Layer):
        """TF1 contrib AttentionCellWrapper; state (cell state, attns, window (B, L, A))."""

        def __init__(self, cell: Any, input_size: int, attn_length: int, attn_size: int, attn_vec: int,
                     variant: str = "", **kw: Any) -> None:
            super().__init__(**kw)
            self.attn_length, self.attn_size, self.variant = attn_length, attn_size, variant
            self.linear1 = Linear(input_size + attn_size, input_size, name="linear1", dtype=self.dtype_policy)
            self.cell = cell
            parts = len(cell.zero_state(1, "float32"))  # the query reads concat(nest.flatten(state))
            self.attention = Attention(parts * cell.units, attn_size, attn_vec, name="attention",
                                       dtype=self.dtype_policy)
            self.linear2 = Linear(cell.units + attn_size, attn_size, name="linear2", dtype=self.dtype_policy)

        def zero_state(self, batch: int, dtype: str) -> tuple:
            z = ops.zeros
            state = (self.cell.zero_state(batch, dtype), z((batch, self.attn_size), dtype),
                     z((batch, self.attn_length, self.attn_size), dtype))
            return state + ((z((batch, self.attn_size), dtype),) if self.variant == "window_lag" else ())

        def call(self, x: Any, state: tuple) -> tuple[Any, tuple]:
            s, attns, window = state[:3]
            cell_out, s = self.cell(self.linear1(x, attns), s)
            attns = self.attention(ops.concatenate(list(s), axis=-1) if len(s) > 1 else s[0], window)
            out = self.linear2(cell_out, attns)
            if self.variant == "window_lag":  # the bug under test: the window gets the previous output
                window = ops.concatenate([window[:, 1:], ops.expand_dims(state[3], 1)], axis=1)
                return out, (s, attns, window, out)
            window = ops.concatenate([window[:, 1:], ops.expand_dims(out, 1)], axis=1)
            return out, (s, attns, window)

    class Seq2Seq(keras.Model):
        """Encoder, output layer, decoder (attention or plain), or the bidirectional classifier."""

        def __init__(self, spec: Seq2SeqSpec, variant: str = "", **kw: Any) -> None:
            super().__init__(**kw)
            self.spec, self.variant = spec, variant
            h, dt = spec.hidden_size, self.dtype_policy  # sublayers do not inherit the model's dtype

            def cell(input_size: int, name: str) -> Any:
                if spec.cell == "lstm":
                    return BasicLSTMCell(input_size, h, spec.forget_bias, name=name, dtype=dt)
                return BasicRNNCell(input_size, h, name=name, dtype=dt)
            if spec.kind == "attention":
                self.encoder = AttentionCellWrapper(cell(spec.input_size, "cell"), spec.input_size,
                                                    spec.L, spec.A, spec.V, variant, name="encoder", dtype=dt)
                self.output_layer = Linear(spec.A, spec.output_size, name="output_layer", dtype=dt)
                self.decoder = AttentionCellWrapper(cell(spec.output_size, "cell"),
                                                    spec.output_size, spec.L, spec.A, spec.V, variant, name="decoder",
                                                    dtype=dt)
            elif spec.kind == "seq2seq":
                self.encoder = cell(spec.input_size, "encoder")
                self.output_layer = Linear(h, spec.output_size, name="output_layer", dtype=dt)
                self.decoder = cell(spec.output_size, "decoder")
            else:
                self.fw = cell(spec.input_size, "fw")
                self.bw = cell(spec.input_size, "bw")
                self.output_layer = Linear(2 * h, spec.output_size, name="output_layer", dtype=dt)

        def call(self, x: Any, targets: Any = None, teacher: bool = False) -> dict[str, Any]:
            spec = self.spec
            b, dt = ops.shape(x)[0], keras_compat.dtype_name(x.dtype)
            if spec.kind == "bidirectional":
                state, fw = self.fw.zero_state(b, dt), []
                for t in range(spec.input_steps):
                    h, state = self.fw(x[:, t], state)
                    fw.append(h)
                state, bw = self.bw.zero_state(b, dt), []
                for t in reversed(range(spec.input_steps)):
                    h, state = self.bw(x[:, t], state)
                    bw.append(h)
                last_bw = bw[-1] if self.variant == "whole_backward" else bw[0]  # the trap: Keras's semantics
                last = ops.concatenate([fw[-1], last_bw], axis=-1)  # TF1: backward after the last input only
                return {"logits": self.output_layer(last), "forward": ops.stack(fw, 1),
                        "backward": ops.stack(bw[::-1], 1)}
            state = self.encoder.zero_state(b, dt)
            enc = []
            for t in range(spec.input_steps):
                out, state = self.encoder(x[:, t], state)
                enc.append(out)
            res = {"encoder": ops.stack(enc, 1)}
            if spec.kind == "attention":
                res.update(st.final_states("encoder", state[0], state[1:3]))
                if self.variant == "drop_attention_state":  # the bug under test
                    state = (state[0], ops.zeros_like(state[1]), ops.zeros_like(state[2])) + state[3:]
            else:
                res.update(st.final_states("encoder", state))
            logits, dec = [self.output_layer(out)], []
            for k in range(1, spec.output_steps):
                if teacher:
                    fed = targets[:, k - 1]
                else:  # the one-hot of the argmax: an integer op, so no gradient flows through it
                    fed = ops.one_hot(ops.argmax(logits[-1], axis=-1), spec.output_size, dtype=dt)
                out, state = self.decoder(fed, state)
                dec.append(out)
                logits.append(self.output_layer(out))
            if spec.kind == "attention":
                res.update(st.final_states("decoder", state[0], state[1:3]))
            else:
                res.update(st.final_states("decoder", state))
            res["logits"] = ops.stack(logits, 1)
            if dec:
                res["decoder"] = ops.stack(dec, 1)
            return res

    return {"Seq2Seq": Seq2Seq, "AttentionCellWrapper": AttentionCellWrapper, "BasicRNNCell": BasicRNNCell,
            "BasicLSTMCell": BasicLSTMCell, "Linear": Linear}


def _variables(model: Any) -> dict[str, Any]:
    """Canonical name -> Keras variable, by attribute path."""
    out = {}
    for e in st.keras_table(model.spec.kind):
        obj = model
        for part in e.framework[0].split("."):
            obj = getattr(obj, part)
        out[e.canonical] = obj
    return out


def build(spec: Seq2SeqSpec, params: dict[str, np.ndarray], dtype: str, variant: str = "") -> Any:
    """A Keras model holding exactly ``params`` (cast to ``dtype``)."""
    check_params(spec, params)
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
    model = _classes()["Seq2Seq"](spec, variant, dtype=dtype, name=spec.kind)
    variables = _variables(model)
    for name, value in params.items():
        if tuple(variables[name].shape) != value.shape:
            raise ValueError(f"Keras variable for {name}: shape {tuple(variables[name].shape)}, expected {value.shape}")
        variables[name].assign(value.astype(dtype))
    return model


def extract(model: Any) -> dict[str, np.ndarray]:
    """The model's weights in the canonical layout, as float64."""
    return {n: np.asarray(v.numpy(), np.float64) for n, v in _variables(model).items()}


def _loss_acc(ops: Any, logits: Any, targets: Any) -> tuple[Any, Any, Any]:
    """The article's loss and accuracy, op for op, on the softmax outputs."""
    p = ops.softmax(logits, axis=-1)
    loss = -ops.mean(ops.sum(ops.log(ops.clip(p, 1e-10, 1.0)) * targets, axis=-1))
    hits = ops.equal(ops.argmax(p, axis=-1), ops.argmax(targets, axis=-1))
    return p, loss, ops.mean(ops.cast(hits, "float64"))


def _compiled(model: Any, spec: Seq2SeqSpec, dtype: str) -> Any:
    """The model's traced forward and backward for ``spec``'s decoding and ``dtype``, made on first use and kept
    with the model: (logits, prediction, loss, accuracy, the other outputs, gradients) from (inputs, targets)."""
    tf, _ = import_tf()
    functions = keras_compat.run_cache(model)
    key = (spec, dtype)
    if key not in functions:
        variables = list(_variables(model).values())
        teacher = spec.decoding == "teacher"

        # autograph off: the loops run over Python ints. Shapes stay static (no reduce_retracing): the cells make
        # their zero states from the batch size, which Keras 2's shape (adapters/keras_compat.py) reads statically
        @tf.function(autograph=False)
        def forward_backward(x: Any, y: Any) -> tuple:
            with tf.GradientTape() as tape:
                res = model(x, y, teacher=teacher)
                p, loss, acc = _loss_acc(keras_compat.ops(), res["logits"], y)
            return p, loss, acc, res, tape.gradient(loss, variables)
        functions[key] = forward_backward
    return functions[key]


def tracing_count(model: Any, spec: Seq2SeqSpec, dtype: str) -> int:
    """How many times ``run`` has traced its function for this model, spec and dtype (0 before the first run)."""
    function = keras_compat.run_cache(model, create=False).get((spec, dtype))
    return 0 if function is None else function.experimental_get_tracing_count()


def run(model: Any, spec: Seq2SeqSpec, batch: Seq2SeqBatch, dtype: str) -> dict[str, dict[str, np.ndarray]]:
    """Outputs, states, loss, accuracy and gradients as TensorFlow computes them (spec's decoding), in one
    ``tf.function`` traced on the first run of a model, spec and dtype and kept with the model; NumPy arrays
    become tensors once before the call, and the results NumPy arrays once after it."""
    tf, keras = import_tf()
    x = tf.constant(batch.inputs, dtype=dtype)
    y = tf.constant(batch.targets, dtype=dtype)
    with without_graph_rewrites():  # the ops the layers define, as eager Keras runs them (adapters/keras_stack.py)
        p, loss, acc, res, grads = _compiled(model, spec, dtype)(x, y)
    logits = res["logits"].numpy()
    output = {"prediction": p.numpy(), "logits": logits}
    if spec.kind != "bidirectional":
        output["decoded"] = np.argmax(logits, axis=-1).astype(np.float64)
    output.update({k: v.numpy() for k, v in res.items() if k in ("encoder", "decoder", "forward", "backward")})
    out = {"output": output, "state": {k[6:]: v.numpy() for k, v in res.items() if k.startswith("state:")},
           "loss": {"loss": loss.numpy()}, "accuracy": {"accuracy": acc.numpy()},
           "gradient": {n: g.numpy() for n, g in zip(_variables(model), grads)}}
    if not out["state"]:
        del out["state"]
    return out


def train(model: Any, spec: Seq2SeqSpec, batches: list[Seq2SeqBatch], lr: float, dtype: str,
          progress: Callable[[str], None] = lambda s: None,
          after_step: Callable[[int], None] = lambda i: None, optimizer: str = "sgd",
          hyper: dict | None = None, clip_norms: list[float] | None = None) -> list[float]:
    """``optimizer`` (keras.optimizers.SGD by default; reference/optimizers.py names the others and their Keras
    rules) on the teacher-forced loss, one step per batch; the losses. ``hyper``: its hyper-parameters by the
    reference's names (Keras's defaults otherwise; ``clip_norm`` is ``global_clipnorm``).

    ``after_step(i)`` is called once step ``i`` has updated the model (the verifier reads the weights there).
    ``clip_norms``, when given, receives the global norm ``global_clipnorm`` clipped by at each step (with
    ``clip_norm`` only; adapters/keras_optim.py ``global_norm``)."""
    tf, keras = import_tf()
    opt = _optimizer(keras, optimizer, lr, hyper or {})
    variables = list(_variables(model).values())
    record = clip_norms is not None and (hyper or {}).get("clip_norm") is not None

    @tf.function(autograph=False)  # the loops run over Python ints: nothing for AutoGraph to convert
    def step(x: Any, y: Any) -> tuple[Any, Any]:
        with tf.GradientTape() as tape:
            _, loss, _ = _loss_acc(keras_compat.ops(), model(x, y, teacher=True)["logits"], y)
        grads = tape.gradient(loss, variables)
        # the norm only when asked for: otherwise the traced step is the one it always was
        norm = global_norm(keras, grads) if record else tf.constant(0.0)
        opt.apply_gradients(zip(grads, variables))
        return loss, norm

    losses = []
    for i, b in enumerate(batches):
        loss, norm = step(tf.constant(b.inputs, dtype), tf.constant(b.targets, dtype))
        losses.append(float(loss))
        if record:
            clip_norms.append(float(norm))
        after_step(i)
        if (i + 1) % max(1, len(batches) // 4) == 0 or i + 1 == len(batches):
            progress(f"tensorflow: step {i + 1}/{len(batches)}, training loss {losses[-1]:.4f}")
    return losses
