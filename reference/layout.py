"""The canonical parameter layout: one place that names every parameter, its shape and its gate blocks.

Every adapter translates to and from this layout; the reference computes only on it.

Conventions
-----------
* Matrices multiply from the right: ``y = x @ kernel``, so a kernel is (in, out), as in Keras.
* Recurrent layer ``k`` (0-based), direction ``fw`` (or ``bw`` for the backward direction of a
  bidirectional layer), is prefixed ``rnn/{k}/{dir}/``. In a layer stack (``reference/stack.py``) the
  prefix is the layer's own name (``lstm/fw/``, a user's Keras layer name); the zoo names its layers
  ``rnn/{k}`` and ``head``, so both read the same.
* Gate-stacked tensors keep their gates as consecutive blocks of ``hidden_size`` along the last axis,
  in the order given by ``GATES`` for the cell: LSTM i, f, g, o (Keras calls g "c", TF1 "j");
  GRU z, r, h (Keras's order; torch stores r, z, n; TF1 r, u with u = z).

Layer k, direction d, with G gates (1 for the simple RNN, 4 LSTM, 3 GRU), H = hidden_size,
P = proj_size or H (the width of the layer's output and recurrent state h), and
D = input_size for k = 0, else the merged output width of layer k-1 (P, or 2P for concat):

    rnn/k/d/kernel            (D, G*H)
    rnn/k/d/recurrent_kernel  (P, G*H)
    rnn/k/d/bias              (G*H,)   only when the spec has use_bias
    rnn/k/d/recurrent_bias    (3H,)    GRU with reset_after and use_bias only: the bias of the
                                       recurrent product, inside the reset product for the h block
    rnn/k/d/peephole_i, peephole_f, peephole_o   (H,)  LSTM use_peepholes (TF1 w_i_diag, ...)
    rnn/k/d/projection        (H, P)   LSTM proj_size > 0 (torch weight_hr transposed, TF1
                                       projection/kernel)

Dense head (y = h @ kernel + bias), h of the top layer's merged width M:

    head/kernel               (M, O)
    head/bias                 (O,)

States are named like their layer: ``rnn/k/d`` is h (B, P); an LSTM adds its cell state
``rnn/k/d/c`` (B, H). Gradients with respect to the initial states are ``rnn/k/d/initial_state``
(h) and ``rnn/k/d/initial_c`` (c); with respect to the inputs ``inputs``.
"""
from __future__ import annotations

from reference.checks import check_layout
from reference.spec import SequenceSpec

# Gate blocks along the last axis of gate-stacked tensors, per cell kind.
GATES: dict[str, tuple[str, ...]] = {"simple_rnn": (), "lstm": ("i", "f", "g", "o"), "gru": ("z", "r", "h")}
GATE_STACKED = ("kernel", "recurrent_kernel", "bias", "recurrent_bias")

RNN_PREFIX = "rnn/0/fw"


def prefix(layer: int, direction: str) -> str:
    return f"rnn/{layer}/{direction}"


def prefixes(spec: SequenceSpec) -> list[str]:
    """Every recurrent layer-direction prefix, layer by layer, forward before backward."""
    return [prefix(k, d) for k in range(spec.num_layers) for d in spec.directions]


def recurrent_param_shapes(layer: object, d_in: int) -> dict[str, tuple[int, ...]]:
    """Suffix -> shape of one direction of a recurrent layer fed ``d_in`` features; ``layer`` has the
    recurrent options (a ``reference.layers.Recurrent``, or a ``SequenceSpec`` for all its layers)."""
    h, p = layer.hidden_size, layer.output_width
    g = max(1, len(GATES[layer.cell]))
    shapes: dict[str, tuple[int, ...]] = {"kernel": (d_in, g * h), "recurrent_kernel": (p, g * h)}
    if layer.use_bias:
        shapes["bias"] = (g * h,)
        if layer.cell == "gru" and layer.reset_after:
            shapes["recurrent_bias"] = (g * h,)
    if layer.use_peepholes:
        for gate in ("i", "f", "o"):
            shapes[f"peephole_{gate}"] = (h,)
    if layer.proj_size:
        shapes["projection"] = (h, p)
    return shapes


def layer_param_shapes(spec: SequenceSpec, layer: int) -> dict[str, tuple[int, ...]]:
    """Suffix -> shape of one direction of ``layer``."""
    return recurrent_param_shapes(spec, spec.input_size if layer == 0 else spec.merged_width)


def param_shapes(spec: SequenceSpec) -> dict[str, tuple[int, ...]]:
    """Canonical name -> shape, in a fixed order (recurrent layers first, then the head)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for k in range(spec.num_layers):
        for d in spec.directions:
            for suffix, shape in layer_param_shapes(spec, k).items():
                shapes[f"{prefix(k, d)}/{suffix}"] = shape
    shapes["head/kernel"] = (spec.merged_width, spec.output_size)
    shapes["head/bias"] = (spec.output_size,)
    return shapes


def state_names(spec: SequenceSpec, pre: str) -> tuple[str, ...]:
    """State names of one layer-direction, in the order of the cell's state tuple."""
    return (pre, f"{pre}/c") if spec.cell == "lstm" else (pre,)


def state_shapes(spec: SequenceSpec, batch: int) -> dict[str, tuple[int, ...]]:
    """Canonical state name -> shape."""
    shapes: dict[str, tuple[int, ...]] = {}
    for pre in prefixes(spec):
        shapes[pre] = (batch, spec.output_width)
        if spec.cell == "lstm":
            shapes[f"{pre}/c"] = (batch, spec.hidden_size)
    return shapes


def initial_state_gradient_name(state: str) -> str:
    """``rnn/k/d`` -> ``rnn/k/d/initial_state``; ``rnn/k/d/c`` -> ``rnn/k/d/initial_c``."""
    return state[:-2] + "/initial_c" if state.endswith("/c") else state + "/initial_state"


def gate_blocks(spec: SequenceSpec, name: str) -> tuple[str, ...]:
    """Gate names stacked along the last axis of parameter ``name`` (empty when not gate-stacked)."""
    if name.startswith("rnn/") and name.rsplit("/", 1)[-1] in GATE_STACKED:
        return GATES[spec.cell]
    return ()


def check_params(spec: SequenceSpec, params: dict) -> None:
    """Raise ValueError naming the tensor and both shapes when ``params`` is not in the layout."""
    check_layout(param_shapes(spec), params, repr(spec.name))
