"""A model as an ordered list of standard layers (``reference.layers``): description, forward and BPTT.

This is the family module of ``StackSpec`` (``family = "reference.stack"``): ``param_shapes``,
``check_params``, ``state_shapes``, ``evaluate``, ``time_axis``, ``gate_blocks`` and
``decision_margins``, as every model family provides them, and for training ``gradients`` and
``optimizer_train`` (reference/stack_training.py). Like JAX's ``stax.serial``, the model is
the composition of its layers: ``forward`` runs each layer's apply in order and keeps each layer's
cache; ``backward`` walks the caches in reverse.

Canonical names, under each layer's ``name`` (``L``):

    L/embeddings                          (V, E)           Embedding
    L/kernel, L/bias                      (in, out), (out) Dense
    L/{fw,bw}/kernel, recurrent_kernel, bias, recurrent_bias, peephole_*, projection
                                          as in reference/layout.py, per direction
States ``L/{fw,bw}`` (h) and ``L/{fw,bw}/c`` (LSTM); their gradients ``.../initial_state`` and
``.../initial_c``. ``evaluate`` returns:

    {"output":   {"prediction": the last layer's output, <recurrent layer name>: its output},
     "state":    {every final state},
     "loss": {"loss": ()}, "accuracy": {"accuracy": ()},
     "gradient": {<every parameter>, "inputs" (float inputs only), <every initial state>}}

Masks: a batch's ``lengths``, a ``Masking`` layer or ``Embedding(mask_zero=True)`` give a (B, T) mask
that recurrent layers consume (state carried through masked steps) and that passes through layers
that keep the time axis. A batch's lengths mask the sequence every layer sees, also after an
Embedding without mask_zero (which in Keras would drop an incoming mask; the Keras adapter
re-attaches it). The loss averages over every step, masked or not.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from reference import dense, losses, metrics, recurrent
from reference.activations import activation
from reference.checks import check_layout
from reference.layers import WEIGHTED, Dense, Dropout, Embedding, Masking, Recurrent
from reference.layout import GATE_STACKED, GATES, initial_state_gradient_name, recurrent_param_shapes
from reference.spec import ACCURACIES, Batch

LOSSES = ("mse", "softmax_ce", "clipped_log_ce", "prob_ce", "softmax_ce_steps")
STACK_ACCURACIES = ACCURACIES + ("sequence_abs_tol",)
Results = dict[str, dict[str, np.ndarray]]


@dataclass(frozen=True)
class StackSpec:
    """Layers applied in order to inputs (B, T, input_size), or to integer ids (B, T) when the first
    layer is an ``Embedding``; a loss over the last layer's output and an accuracy rule."""

    family: ClassVar[str] = "reference.stack"

    name: str
    input_size: int
    layers: tuple
    loss: str = "mse"
    accuracy: str = "abs_tol"
    accuracy_tol: float = 0.05
    description: str = ""

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; expected one of {', '.join(LOSSES)}")
        if self.accuracy not in STACK_ACCURACIES:
            raise ValueError(f"unknown accuracy {self.accuracy!r}; expected one of {', '.join(STACK_ACCURACIES)}")
        if not self.layers:
            raise ValueError(f"model {self.name!r} has no layers")
        names = [layer.name for layer in self.layers]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"model {self.name!r}: layer names must be unique; repeated: {dup}")
        widths(self)  # raises on a layer order no framework allows

    @property
    def takes_ids(self) -> bool:
        return isinstance(self.layers[0], Embedding)

    @property
    def recurrent_layers(self) -> tuple[Recurrent, ...]:
        return tuple(layer for layer in self.layers if isinstance(layer, Recurrent))

    @property
    def output_size(self) -> int:
        return widths(self)[-1][0]

    @property
    def return_sequences(self) -> bool:
        """Whether the prediction keeps the time axis (B, T, O) rather than (B, O)."""
        return widths(self)[-1][1]

    @property
    def hidden_size(self) -> int:
        """The scale weights are drawn at (1/sqrt of it): the widest recurrent layer, else the widest layer."""
        rec = [layer.hidden_size for layer in self.recurrent_layers]
        return max(rec) if rec else max(w for w, _ in widths(self))


def widths(spec: StackSpec) -> list[tuple[int, bool]]:
    """(feature width, has a time axis) of each layer's output; ValueError for an impossible order."""
    out = []
    width, seq = spec.input_size, True
    for i, layer in enumerate(spec.layers):
        if isinstance(layer, Embedding):
            if i != 0:
                raise ValueError(f"layer {layer.name}: an Embedding must be the first layer")
            width = layer.output_dim
        elif isinstance(layer, Masking):
            if not seq:
                raise ValueError(f"layer {layer.name}: Masking needs a sequence (B, T, D) input")
        elif isinstance(layer, Dense):
            width = layer.units
        elif isinstance(layer, Recurrent):
            if not seq:
                raise ValueError(f"layer {layer.name}: a recurrent layer needs a sequence, but the layer before "
                                 "returns one vector per sequence (return_sequences=False)")
            width, seq = layer.merged_width, layer.return_sequences
        elif not isinstance(layer, Dropout):
            raise ValueError(f"unsupported layer {type(layer).__name__}")
        out.append((width, seq))
    return out


def _in_width(spec: StackSpec, index: int) -> int:
    return spec.input_size if index == 0 else widths(spec)[index - 1][0]


def layer_param_shapes(spec: StackSpec, index: int) -> dict[str, tuple[int, ...]]:
    """Canonical name -> shape of the parameters of layer ``index``."""
    layer = spec.layers[index]
    if isinstance(layer, Embedding):
        return {f"{layer.name}/embeddings": (layer.input_dim, layer.output_dim)}
    if isinstance(layer, Dense):
        shapes = {f"{layer.name}/kernel": (_in_width(spec, index), layer.units)}
        if layer.use_bias:
            shapes[f"{layer.name}/bias"] = (layer.units,)
        return shapes
    if isinstance(layer, Recurrent):
        per = recurrent_param_shapes(layer, _in_width(spec, index))
        return {f"{layer.name}/{d}/{k}": s for d in layer.directions for k, s in per.items()}
    return {}


def param_shapes(spec: StackSpec) -> dict[str, tuple[int, ...]]:
    """Canonical name -> shape, layer by layer."""
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(len(spec.layers)):
        shapes.update(layer_param_shapes(spec, i))
    return shapes


def check_params(spec: StackSpec, params: dict) -> None:
    """ValueError naming the tensor and both shapes when ``params`` is not in the layout."""
    check_layout(param_shapes(spec), params, repr(spec.name))


def state_names(layer: Recurrent, direction: str) -> tuple[str, ...]:
    pre = f"{layer.name}/{direction}"
    return (pre, f"{pre}/c") if layer.cell == "lstm" else (pre,)


def state_shapes(spec: StackSpec, batch: int) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in spec.recurrent_layers:
        for d in layer.directions:
            names = state_names(layer, d)
            shapes[names[0]] = (batch, layer.output_width)
            if layer.cell == "lstm":
                shapes[names[1]] = (batch, layer.hidden_size)
    return shapes


def gate_blocks(spec: StackSpec, name: str) -> tuple[str, ...]:
    """Gate names stacked along the last axis of parameter (or gradient) ``name``."""
    for layer in spec.recurrent_layers:
        if name.startswith(layer.name + "/") and name.rsplit("/", 1)[-1] in GATE_STACKED:
            return GATES[layer.cell]
    return ()


def layer_of(spec: StackSpec, name: str) -> str | None:
    """The layer a canonical parameter, state or output name belongs to."""
    for layer in sorted(spec.layers, key=lambda l: -len(l.name)):  # longest first: "rnn/1" before "rnn"
        if name == layer.name or name.startswith(layer.name + "/"):
            return layer.name
    return None


def initial_states(spec: StackSpec, batch: Batch) -> dict[str, np.ndarray]:
    """Every initial state by canonical name: the batch's, or zeros where it gives none. An array
    (not a dict) is the forward state of the first recurrent layer."""
    b = batch.inputs.shape[0]
    shapes = state_shapes(spec, b)
    given = batch.initial_state
    if given is None:
        given = {}
    elif not isinstance(given, dict):
        if not shapes:
            raise ValueError(f"model {spec.name!r} has no recurrent state")
        given = {next(iter(shapes)): given}
    unknown = [n for n in given if n not in shapes]
    if unknown:
        raise ValueError(f"initial state(s) {unknown} are not states of {spec.name!r}; expected {list(shapes)}")
    dtype = batch.inputs.dtype if np.issubdtype(batch.inputs.dtype, np.floating) else np.float64
    out = {}
    for name, shape in shapes.items():
        value = given.get(name)
        if value is None:
            value = np.zeros(shape, dtype)
        elif tuple(value.shape) != shape:
            raise ValueError(f"initial state {name}: expected shape {shape}, got {tuple(value.shape)}")
        out[name] = value
    return out


def lengths_mask(batch: Batch) -> np.ndarray | None:
    """(B, T) booleans: step t of sequence b is real when t < lengths[b]; None without lengths."""
    if batch.lengths is None:
        return None
    steps = batch.inputs.shape[1]
    lengths = np.asarray(batch.lengths)
    if lengths.shape != (batch.inputs.shape[0],) or np.any(lengths < 1) or np.any(lengths > steps):
        raise ValueError(f"lengths: expected {batch.inputs.shape[0]} integers in 1..{steps}, got {lengths}")
    return np.arange(steps)[None, :] < lengths[:, None]


def merge(mode: str, fw: np.ndarray, bw: np.ndarray) -> np.ndarray:
    if mode == "concat":
        return np.concatenate([fw, bw], axis=-1)
    if mode == "sum":
        return fw + bw
    if mode == "mul":
        return fw * bw
    return (fw + bw) / 2  # ave, as Keras computes it


def merge_backward(mode: str, fw: np.ndarray, bw: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if mode == "concat":
        p = fw.shape[-1]
        return d[..., :p], d[..., p:]
    if mode == "sum":
        return d, d
    if mode == "mul":
        return d * bw, d * fw
    return d / 2, d / 2


def _sub(params: dict, pre: str) -> dict:
    return {k[len(pre) + 1:]: v for k, v in params.items() if k.startswith(pre + "/")}


def check_inputs(spec: StackSpec, x: np.ndarray) -> None:
    if spec.takes_ids:
        emb = spec.layers[0]
        if x.ndim != 2 or not np.issubdtype(x.dtype, np.integer):
            raise ValueError(f"inputs: expected integer ids of shape (batch, steps) for Embedding {emb.name}, "
                             f"got {x.dtype} {x.shape}")
        if x.size and (x.min() < 0 or x.max() >= emb.input_dim):
            raise ValueError(f"inputs: ids must lie in 0..{emb.input_dim - 1} (Embedding {emb.name}), "
                             f"got {x.min()}..{x.max()}")
    elif x.ndim != 3 or x.shape[2] != spec.input_size:
        raise ValueError(f"inputs: expected shape (batch, steps, {spec.input_size}), got {x.shape}")


def _runs_backwards(layer: Recurrent, direction: str) -> bool:
    """Whether a direction processes the steps last to first (``bw_order`` models the porting bugs)."""
    if direction == "bw":
        return layer.bw_order in ("reversed", "not_realigned")
    return layer.go_backwards


def _realigned(layer: Recurrent, direction: str) -> bool:
    """Whether a direction's outputs are reversed from processing order back into input order."""
    return direction == "bw" and layer.bw_order in ("reversed", "input_reversed_twice")


def _recurrent_forward(layer: Recurrent, params: dict, seq: np.ndarray, states0: dict, mask: np.ndarray | None
                       ) -> tuple[np.ndarray, dict, dict]:
    """One (bidirectional) recurrent layer: (output, final states, cache)."""
    outs, caches, final = {}, {}, {}
    if layer.time_major:  # (B, T, D) read as (T, B, D): the recurrence runs along the batch axis (a porting bug)
        seq = seq.swapaxes(0, 1)
        mask = None if mask is None else mask.T
    for d in layer.directions:
        names = state_names(layer, d)
        start = tuple(states0[n] for n in names)
        if layer.time_major:  # torch's default zero states, one per sequence it sees
            start = tuple(np.zeros((seq.shape[0],) + s.shape[1:], seq.dtype) for s in start)
        opts = recurrent.CELL_MODULES[layer.cell].options(layer)
        out, s_t, caches[d] = recurrent.forward(layer.cell, _sub(params, f"{layer.name}/{d}"), seq, start, opts,
                                                _runs_backwards(layer, d), mask, layer.zero_output_for_mask)
        if layer.output_shift:  # each step outputs the state it started from (a porting bug)
            out = np.concatenate([start[0][:, None].astype(out.dtype), out[:, :-1]], axis=1)
        out = out[:, ::-1] if _realigned(layer, d) else out  # bw back to input order
        outs[d] = out.swapaxes(0, 1) if layer.time_major else out
        final.update(zip(names, s_t))
    if layer.return_sequences:
        y = merge(layer.merge_mode, outs["fw"], outs["bw"]) if layer.bidirectional else outs["fw"]
    elif not layer.bidirectional:
        # the last step processed (go_backwards: the first input step); first_step: a porting bug
        y = outs["fw"][:, 0 if layer.last_output == "first_step" else -1]
    elif layer.last_output == "final":  # Keras: backward after the whole reversed sequence
        y = merge(layer.merge_mode, outs["fw"][:, -1], outs["bw"][:, 0])
    elif layer.last_output == "first_step":  # torch out[:, 0] where out[:, -1] was meant (a porting bug)
        y = merge(layer.merge_mode, outs["fw"][:, 0], outs["bw"][:, 0])
    else:  # TF1 static_bidirectional_rnn(...)[0][-1], torch out[:, -1]
        y = merge(layer.merge_mode, outs["fw"][:, -1], outs["bw"][:, -1])
    return y, final, {"outs": outs, "caches": caches}


def _recurrent_backward(layer: Recurrent, params: dict, cache: dict, d: np.ndarray
                        ) -> tuple[dict, np.ndarray, dict]:
    """(parameter gradients, dL/d input sequence, dL/d initial states) of one recurrent layer."""
    outs = cache["outs"]
    if layer.return_sequences:
        if layer.bidirectional:
            d_outs = dict(zip(("fw", "bw"), merge_backward(layer.merge_mode, outs["fw"], outs["bw"], d)))
        else:
            d_outs = {"fw": d}
    else:
        d_outs = {k: np.zeros_like(v) for k, v in outs.items()}
        t_fw = 0 if layer.last_output == "first_step" else -1
        if not layer.bidirectional:
            d_outs["fw"][:, t_fw] = d
        else:
            t_bw = 0 if layer.last_output == "final" or layer.last_output == "first_step" else -1
            d_fw, d_bw = merge_backward(layer.merge_mode, outs["fw"][:, t_fw], outs["bw"][:, t_bw], d)
            d_outs["fw"][:, t_fw] = d_fw
            d_outs["bw"][:, t_bw] = d_bw
    grads, initial, d_in = {}, {}, None
    for direction in layer.directions:
        pre = f"{layer.name}/{direction}"
        c = cache["caches"][direction]
        d_out = d_outs[direction].swapaxes(0, 1) if layer.time_major else d_outs[direction]
        d_out = d_out[:, ::-1] if _realigned(layer, direction) else d_out  # processing order
        d_final = tuple(np.zeros(shape, d_out.dtype) for shape in c["state_shapes"])
        d_start = None
        if layer.output_shift:  # step t's output is the state after step t - 1 (the initial state at t = 0)
            d_start = d_out[:, 0]
            d_out = np.concatenate([d_out[:, 1:], np.zeros_like(d_out[:, :1])], axis=1)
        g, dx, d0 = recurrent.backward(_sub(params, pre), c, d_out, d_final)
        if d_start is not None:
            d0 = (d0[0] + d_start,) + tuple(d0[1:])
        if layer.time_major:  # back to (B, T, D); the given initial states were not used
            dx = dx.swapaxes(0, 1)
            d0 = tuple(np.zeros((dx.shape[0],) + s.shape[1:], s.dtype) for s in d0)
        grads.update({f"{pre}/{n}": v for n, v in g.items()})
        initial.update({initial_state_gradient_name(n): v for n, v in zip(state_names(layer, direction), d0)})
        d_in = dx if d_in is None else d_in + dx
    return grads, d_in, initial


def _dense_backward(layer: Dense, y: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """dL/d(pre-activation) from dL/dy, through the activation written in terms of its output."""
    if layer.activation == "softmax":
        return y * (dy - np.sum(dy * y, axis=-1, keepdims=True))
    if layer.activation == "linear":  # dy itself, not dy * ones: with a large vocabulary two arrays of the largest size
        return dy
    return dy * activation(layer.activation)[1](y)


def dense_activation(name: str, z: np.ndarray) -> np.ndarray:
    return losses.softmax(z) if name == "softmax" else activation(name)[0](z)


def dropout_forward(layer: Dropout, x: np.ndarray, batch: Batch) -> tuple[np.ndarray | None, np.ndarray]:
    """(cache, output) of a Dropout layer: x * mask / (1 - rate) with the batch's keep mask for it (training), the
    identity without one (inference). The cache is the scaled mask (None for the identity)."""
    masks = batch.dropout_masks or {}
    if layer.name not in masks:
        return None, x
    mask = np.asarray(masks[layer.name])
    if mask.shape != x.shape:
        raise ValueError(f"dropout mask of layer {layer.name}: expected the shape of its input {x.shape}, "
                         f"got {mask.shape}")
    scaled = mask.astype(x.dtype) / np.asarray(1.0 - layer.rate, x.dtype)
    return scaled, x * scaled


def forward(spec: StackSpec, params: dict, batch: Batch) -> tuple[Results, dict]:
    """Every layer in order: outputs, final states, loss, accuracy, and the cache for ``backward``."""
    check_params(spec, params)
    check_inputs(spec, batch.inputs)
    states0 = initial_states(spec, batch)
    mask = lengths_mask(batch)
    seq = batch.inputs
    caches: list = []
    outputs: dict[str, np.ndarray] = {}
    final: dict[str, np.ndarray] = {}
    for layer in spec.layers:
        if isinstance(layer, Embedding):
            table = params[f"{layer.name}/embeddings"]
            cache, seq = seq, table[seq]  # (B, T, E)
            if layer.mask_zero:
                mask = cache != 0
        elif isinstance(layer, Masking):
            m = np.any(seq != layer.mask_value, axis=-1)  # (B, T)
            cache, seq, mask = m, seq * m[..., None].astype(seq.dtype), m
        elif isinstance(layer, Dropout):
            cache, seq = dropout_forward(layer, seq, batch)
        elif isinstance(layer, Dense):
            z = seq @ params[f"{layer.name}/kernel"]
            if layer.use_bias:
                z = dense.add_bias(z, params[f"{layer.name}/bias"])
            cache, seq = seq, dense_activation(layer.activation, z)
            cache = (cache, seq)
        else:
            seq, states, cache = _recurrent_forward(layer, params, seq, states0, mask)
            final.update(states)
            outputs[layer.name] = seq
            if not layer.return_sequences:
                mask = None
        caches.append(cache)
    y = seq
    loss, dy = losses.loss_and_grad(spec.loss, y, batch.targets)
    metric_loss = "softmax_ce" if spec.loss == "prob_ce" else spec.loss  # integer labels either way
    results: Results = {
        "output": {"prediction": y, **outputs},
        "state": final,
        "loss": {"loss": np.asarray(loss)},
        "accuracy": {"accuracy": np.asarray(metrics.accuracy(spec.accuracy, y, batch.targets, metric_loss,
                                                             spec.accuracy_tol))},
    }
    return results, {"layers": caches, "dy": dy}


def backward(spec: StackSpec, params: dict, cache: dict) -> dict[str, np.ndarray]:
    """Gradients of the loss: every parameter, ``inputs`` (float inputs) and every initial state."""
    grads: dict[str, np.ndarray] = {}
    initial: dict[str, np.ndarray] = {}
    d = cache["dy"]
    for layer, c in zip(reversed(spec.layers), reversed(cache["layers"])):
        if isinstance(layer, Embedding):
            g = np.zeros_like(params[f"{layer.name}/embeddings"])
            np.add.at(g, c, d)  # rows of repeated ids accumulate
            grads[f"{layer.name}/embeddings"] = g
            d = None
        elif isinstance(layer, Masking):
            d = d * c[..., None].astype(d.dtype)
        elif isinstance(layer, Dropout):
            d = d if c is None else d * c  # the scaled keep mask: dropped units pass no gradient
        elif isinstance(layer, Dense):
            x, y = c
            kernel = params[f"{layer.name}/kernel"]
            dz = _dense_backward(layer, y, d)
            grads[f"{layer.name}/kernel"] = x.reshape(-1, kernel.shape[0]).T @ dz.reshape(-1, kernel.shape[1])
            if layer.use_bias:
                grads[f"{layer.name}/bias"] = dz.reshape(-1, kernel.shape[1]).sum(axis=0)
            d = dz @ kernel.T
        elif isinstance(layer, Recurrent):
            g, d, init = _recurrent_backward(layer, params, c, d)
            grads.update(g)
            initial.update(init)
    ordered = {n: grads[n] for n in param_shapes(spec)}
    if not spec.takes_ids:
        ordered["inputs"] = d
    for n in state_shapes(spec, 1):
        ordered[initial_state_gradient_name(n)] = initial[initial_state_gradient_name(n)]
    return ordered


def evaluate(spec: StackSpec, params: dict, batch: Batch) -> Results:
    """Forward and backward: the full nested results."""
    results, cache = forward(spec, params, batch)
    results["gradient"] = backward(spec, params, cache)
    return results


def loss_only(spec: StackSpec, params: dict, batch: Batch) -> float:
    """The scalar loss (for finite differences)."""
    return float(forward(spec, params, batch)[0]["loss"]["loss"])


# Training (verify/training.py calls them on the family): reference/stack_training.py, imported when first used
def gradients(spec: StackSpec, params: dict, batch: Batch) -> tuple[float, dict[str, np.ndarray]]:
    """The loss and its gradient with respect to every parameter, in the params' dtype."""
    from reference import stack_training
    return stack_training.gradients(spec, params, batch)


def gradients_and_states(spec: StackSpec, params: dict, batch: Batch
                         ) -> tuple[float, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``gradients`` and the final states (what a carried-state training step hands to the next batch)."""
    from reference import stack_training
    return stack_training.gradients_and_states(spec, params, batch)


def starting_from(batch: Batch, states: dict[str, np.ndarray]) -> Batch:
    """``batch`` started from ``states`` instead of its own initial state."""
    from reference import stack_training
    return stack_training.starting_from(batch, states)


def optimizer_train(spec: StackSpec, params: dict, batches: list[Batch], lr: float, optimizer: str = "sgd",
                    variant: str = "torch", hyper: dict | None = None, carry_state: bool = False,
                    copies: dict[str, int] | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One optimiser step per batch (reference/stack_training.py: optionally carrying the state across batches, and
    stepping each summand of a tensor the framework trains as a sum)."""
    from reference import stack_training
    return stack_training.optimizer_train(spec, params, batches, lr, optimizer, variant, hyper, carry_state, copies)


def time_axis(spec: StackSpec, quantity: str, name: str) -> int | None:
    """The time axis of a result tensor, or None when it has none."""
    if quantity == "gradient" and name == "inputs":
        return 1
    if quantity != "output":
        return None
    if name == "prediction":
        return 1 if spec.return_sequences else None
    layer = next((l for l in spec.recurrent_layers if l.name == name), None)
    return 1 if layer is not None and layer.return_sequences else None


def decision_margins(spec: StackSpec, results: Results, batch: Batch) -> np.ndarray:
    """How far each accuracy decision of ``results`` is from flipping (one value per decision)."""
    return metrics.decision_margins(spec.accuracy, results["output"]["prediction"], batch.targets, spec.accuracy_tol)


def weighted_layers(spec: StackSpec) -> list:
    """The layers that hold parameters, in order (what a torch module list must match)."""
    return [layer for layer in spec.layers if isinstance(layer, WEIGHTED)]


def from_sequence(spec) -> StackSpec:
    """The layer stack a ``reference.spec.SequenceSpec`` describes: recurrent layers ``rnn/0``, ``rnn/1``,
    ... with the spec's options, then a Dense ``head`` (per step when ``return_sequences``)."""
    layers = []
    for k in range(spec.num_layers):
        top = k == spec.num_layers - 1
        layers.append(Recurrent(
            f"rnn/{k}", spec.cell, spec.hidden_size, activation=spec.activation,
            recurrent_activation=spec.recurrent_activation, use_bias=spec.use_bias, reset_after=spec.reset_after,
            forget_bias=spec.forget_bias, use_peepholes=spec.use_peepholes, proj_size=spec.proj_size,
            return_sequences=not top or spec.return_sequences, go_backwards=spec.go_backwards,
            bidirectional=spec.bidirectional, merge_mode=spec.merge_mode, last_output=spec.last_output,
            zero_output_for_mask=spec.zero_output_for_mask))
    layers.append(Dense("head", spec.output_size))
    return StackSpec(spec.name, spec.input_size, tuple(layers), spec.loss, spec.accuracy, spec.accuracy_tol,
                     spec.description)


def to_sequence(spec: StackSpec):
    """The ``SequenceSpec`` a stack is, when it is one: recurrent layers ``rnn/0..`` sharing their options
    (lower layers returning sequences, directions concatenated), then a linear Dense ``head``; else None."""
    from reference.spec import SequenceSpec
    rec, head = spec.layers[:-1], spec.layers[-1]
    if not rec or not all(isinstance(l, Recurrent) for l in rec) or not isinstance(head, Dense):
        return None
    if head.name != "head" or head.activation != "linear" or not head.use_bias:
        return None
    top = rec[-1]
    try:
        seq = SequenceSpec(spec.name, spec.input_size, top.hidden_size, head.units, cell=top.cell,
                           activation=top.activation, use_bias=top.use_bias, return_sequences=top.return_sequences,
                           go_backwards=top.go_backwards, loss=spec.loss if spec.loss != "prob_ce" else "mse",
                           accuracy=spec.accuracy, accuracy_tol=spec.accuracy_tol, description=spec.description,
                           recurrent_activation=top.recurrent_activation, reset_after=top.reset_after,
                           forget_bias=top.forget_bias, use_peepholes=top.use_peepholes, proj_size=top.proj_size,
                           num_layers=len(rec), bidirectional=top.bidirectional, merge_mode=top.merge_mode,
                           last_output=top.last_output, zero_output_for_mask=top.zero_output_for_mask)
    except ValueError:
        return None
    if spec.loss == "prob_ce" or from_sequence(seq) != spec:
        return None
    return seq
