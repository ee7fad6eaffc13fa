"""The canonical parameter layout: one place that names every parameter, its shape and its gate blocks.

Every adapter translates to and from this layout; the reference computes only on it.

Conventions
-----------
* Matrices multiply from the right: ``y = x @ kernel``, so a kernel is (in, out), as in Keras.
* Recurrent layer ``k`` (0-based), direction ``fw`` (or ``bw`` for the backward direction of a
  bidirectional layer), is prefixed ``rnn/{k}/{dir}/``.
* Gate-stacked tensors keep their gates as consecutive blocks of ``hidden_size`` along the last axis,
  in the order given by ``GATES`` for the cell.

Simple RNN, layer k, direction d (h_t = act(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)):

    rnn/k/d/kernel            (D, H)   D = input size of that layer
    rnn/k/d/recurrent_kernel  (H, H)
    rnn/k/d/bias              (H,)     only when the spec has use_bias

Dense head (y = h @ kernel + bias):

    head/kernel               (H, O)
    head/bias                 (O,)

States are named like their layer, ``rnn/k/d``; the gradient with respect to an initial state is
``rnn/k/d/initial_state`` and with respect to the inputs ``inputs``.
"""
from __future__ import annotations

from reference.spec import SequenceSpec

# Gate blocks along the last axis of gate-stacked tensors, per cell kind.
GATES: dict[str, tuple[str, ...]] = {"simple_rnn": ()}

RNN_PREFIX = "rnn/0/fw"


def param_shapes(spec: SequenceSpec) -> dict[str, tuple[int, ...]]:
    """Canonical name -> shape, in a fixed order (recurrent layers first, then the head)."""
    d, h, o = spec.input_size, spec.hidden_size, spec.output_size
    gates = max(1, len(GATES[spec.cell]))
    shapes: dict[str, tuple[int, ...]] = {
        f"{RNN_PREFIX}/kernel": (d, gates * h),
        f"{RNN_PREFIX}/recurrent_kernel": (h, gates * h),
    }
    if spec.use_bias:
        shapes[f"{RNN_PREFIX}/bias"] = (gates * h,)
    shapes["head/kernel"] = (h, o)
    shapes["head/bias"] = (o,)
    return shapes


def state_shapes(spec: SequenceSpec, batch: int) -> dict[str, tuple[int, ...]]:
    """Canonical state name -> shape."""
    return {RNN_PREFIX: (batch, spec.hidden_size)}


def gate_blocks(spec: SequenceSpec, name: str) -> tuple[str, ...]:
    """Gate names stacked along the last axis of parameter ``name`` (empty when not gate-stacked)."""
    if name.startswith("rnn/") and not name.endswith("initial_state"):
        return GATES[spec.cell]
    return ()


def describe(spec: SequenceSpec) -> str:
    """One line per parameter: name and shape; used in layout error messages."""
    return "; ".join(f"{n} {s}" for n, s in param_shapes(spec).items())


def check_params(spec: SequenceSpec, params: dict) -> None:
    """Raise ValueError naming the tensor and both shapes when ``params`` is not in the layout."""
    import numpy as np

    expected = param_shapes(spec)
    missing = [n for n in expected if n not in params]
    extra = [n for n in params if n not in expected]
    if missing or extra:
        raise ValueError(
            f"parameters do not match the layout of {spec.name!r}: missing {missing}, unexpected {extra}; "
            f"expected {describe(spec)}")
    for name, shape in expected.items():
        got = tuple(np.shape(params[name]))
        if got != shape:
            raise ValueError(f"parameter {name}: expected shape {shape}, got {got}")
        if not np.all(np.isfinite(params[name])):
            raise ValueError(f"parameter {name} holds NaN or infinite values")
