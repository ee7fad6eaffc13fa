"""Hypothesis strategies and helpers for LSTM/GRU, stacked and bidirectional models (issue 3).

Every drawn case has gate-distinct weights (uniform per element), non-zero biases, a non-zero
initial value for every state of every layer and direction, batch >= 3 and >= 2 steps.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from reference.layout import state_shapes
from reference.params import draw_batch, init_params
from reference.spec import Batch, SequenceSpec
from verify import engine
from verify.report import Check, Report

FRAMEWORKS = ("tensorflow", "torch")


@dataclass(frozen=True)
class Case:
    spec: SequenceSpec
    params: dict
    batch: Batch

    def __repr__(self) -> str:  # what Hypothesis prints for a falsifying example
        b, t, _ = self.batch.inputs.shape
        return f"Case({self.spec!r}, batch={b}, steps={t}, lengths={self.batch.lengths})"


def all_states(spec: SequenceSpec, rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
    return {n: rng.uniform(-0.5, 0.5, size=s) for n, s in state_shapes(spec, batch).items()}


def make_case(spec: SequenceSpec, seed: int, batch: int = 3, steps: int = 4, masked: bool = False) -> Case:
    """Weights, inputs, targets, every initial state; with ``masked``, lengths in 1..steps with at
    least one sequence shorter than ``steps`` and one of full length."""
    rng = np.random.default_rng(seed)
    params = init_params(spec, rng)
    b = draw_batch(spec, rng, batch, steps, with_initial_state=False)
    lengths = None
    if masked:
        lengths = rng.integers(1, steps + 1, size=batch)
        lengths[0], lengths[-1] = steps, max(1, steps - 1 - int(rng.integers(0, steps)))
    return Case(spec, params, Batch(b.inputs, b.targets, all_states(spec, rng, batch), lengths))


# The defaults (tanh, sigmoid gates) weigh more so that torch's native layers are drawn often.
ACTS = ["tanh"] * 4 + ["relu", "sigmoid", "linear", "hard_sigmoid", "hard_sigmoid_keras2"]
GATE_ACTS = ["sigmoid"] * 3 + ["hard_sigmoid", "hard_sigmoid_keras2"]


@st.composite
def recurrent_specs(draw: st.DrawFn, cells: tuple[str, ...] = ("lstm", "gru", "simple_rnn"),
                    tf1: bool = False) -> SequenceSpec:
    """Every option of issue 3 that Keras 3 and torch share; ``tf1`` adds peepholes, forget_bias, projection."""
    cell = draw(st.sampled_from(cells))
    loss = draw(st.sampled_from(["mse", "softmax_ce", "clipped_log_ce"]))
    bidirectional = draw(st.booleans())
    num_layers = draw(st.integers(1, 2))
    kw: dict = {}
    if cell == "lstm":
        kw["proj_size"] = draw(st.sampled_from([0, 0, 2]))
        if tf1:
            kw["use_peepholes"] = draw(st.booleans())
            kw["forget_bias"] = draw(st.sampled_from([0.0, 1.0, 0.5]))
    if cell == "gru":
        kw["reset_after"] = draw(st.booleans())
    if cell != "simple_rnn":
        kw["recurrent_activation"] = draw(st.sampled_from(GATE_ACTS))
    return SequenceSpec(
        "drawn",
        input_size=draw(st.integers(1, 4)),
        hidden_size=draw(st.integers(1, 5)),
        output_size=draw(st.integers(2, 3)),
        cell=cell,
        activation=draw(st.sampled_from(ACTS if cell != "simple_rnn" else ["tanh", "relu", "sigmoid"])),
        use_bias=draw(st.booleans()),
        return_sequences=draw(st.booleans()),
        go_backwards=draw(st.booleans()) if num_layers == 1 and not bidirectional else False,
        loss=loss,
        accuracy="abs_tol" if loss == "mse" else "argmax",
        num_layers=num_layers,
        bidirectional=bidirectional,
        merge_mode=draw(st.sampled_from(["concat", "sum", "mul", "ave"])),
        last_output=draw(st.sampled_from(["final", "last_step"])),
        zero_output_for_mask=draw(st.booleans()),
        **kw,
    )


@st.composite
def cases(draw: st.DrawFn, specs: st.SearchStrategy, supports=None) -> Case:
    """A drawn spec with data; variable lengths (masks) in about half the cases where ``supports``
    (an adapter's ``supports(spec, masked)``) accepts them."""
    spec = draw(specs)
    masked = draw(st.booleans()) and supports is not None and supports(spec, True) is None
    return make_case(spec, draw(st.integers(0, 2**32 - 1)), draw(st.integers(3, 5)), draw(st.integers(2, 6)), masked)


def as_stack(spec):
    """The layer stack a drawn ``SequenceSpec`` describes (adapters and the engine take stacks); a stack as is."""
    from reference import stack
    return stack.from_sequence(spec) if isinstance(spec, SequenceSpec) else spec


def top_output(spec) -> str:
    """The result key of the top recurrent layer's sequence (a SequenceSpec's ``hidden``): ``rnn/{num_layers-1}``."""
    return as_stack(spec).recurrent_layers[-1].name


def adapter(framework: str):
    from adapters import registry
    return registry.get(framework, as_stack(SequenceSpec("any", 1, 1, 1)))


def supports(framework: str):
    """``supports(spec, masked)`` of ``framework``'s stack adapter, for drawn SequenceSpecs."""
    return lambda spec, masked=False: adapter(framework).supports(as_stack(spec), masked)


def fused_groups(spec) -> list | None:
    """torch: every recurrent layer in one module (nn.LSTM(num_layers=2), as a port usually writes it) and the
    head in its own; None when torch cannot fuse them (non-concat merges between layers)."""
    from adapters import torch_stack
    layered = as_stack(spec)
    group = torch_stack.Group("rnn", tuple(l.name for l in layered.recurrent_layers))
    try:
        torch_stack.group_spec(layered, group)
    except ValueError:
        return None
    return [group, torch_stack.Group("head", ("head",))]


def build(framework: str, spec, params: dict, dtype: str, **options: object) -> object:
    """``framework``'s model of ``spec`` holding ``params``; torch fuses the recurrent layers into one module
    where it can (the lower layers' outputs are then not visible, and not checked)."""
    if framework == "torch" and "groups" not in options:
        options["groups"] = fused_groups(spec)
    return adapter(framework).build(as_stack(spec), params, dtype, **options)


def verify_case(case: Case, framework: str, dtype: str, built_from: dict | None = None,
                model: object = None, intended: bool = False) -> Report:
    """Build (or take ``model``), read back, run and check one framework against the reference, all on the
    layer stack ``case.spec`` describes.

    The reference runs on the weights read back from the model, or with ``intended`` on
    ``case.params`` (the weights a port was meant to carry: a wrong port then shows in the outputs).
    """
    spec = as_stack(case.spec)
    adapter_ = adapter(framework)
    built = model if model is not None else build(framework, spec, case.params, dtype)
    weights = case.params if intended else adapter_.extract(built)
    run = engine.FrameworkRun(framework, weights, adapter_.run(built, spec, case.batch, dtype))
    checks, _, _ = engine.check_run(spec, case.batch, dtype, run,
                                    built_from=case.params if built_from is None else built_from)
    return Report(case.spec.name, dtype, 0, (framework,), {}, tuple(checks))


def check_gate_order_trap(case: Case, framework: str, port: str, order: tuple[int, ...],
                          swapped: set[str]) -> None:
    """Build ``framework``'s model from ``case.params`` (port "correct"), or with port "order_ignored"
    from layer 0's gate-stacked tensors permuted by ``order``: a swap the adapter itself makes, so it is
    undone and the canonical blocks land in the framework's slots unpermuted. The broken port's read-back
    kernel must be wrong in exactly the ``swapped`` gates, its bias wrong, and its outputs must differ
    from those of the intended weights."""
    from adapters.tables import permute_blocks
    from verify import render

    port_params = dict(case.params)
    if port == "order_ignored":
        for n in ("kernel", "recurrent_kernel", "bias", "recurrent_bias"):
            if f"rnn/0/fw/{n}" in port_params:
                port_params[f"rnn/0/fw/{n}"] = permute_blocks(case.params[f"rnn/0/fw/{n}"], order)
    built = build(framework, case.spec, port_params, "float64")
    read_back = verify_case(case, framework, "float64", model=built)
    intended = verify_case(case, framework, "float64", model=built, intended=True)
    if port == "correct":
        assert read_back.verdict == intended.verdict == "equivalent", render.table(intended)
        return
    assert set(read_back.find(framework, "parameter", "rnn/0/fw/kernel").bad_gates) == swapped, \
        render.table(read_back)
    assert not read_back.find(framework, "parameter", "rnn/0/fw/bias").ok, render.table(read_back)
    assert not intended.find(framework, "output", "prediction").ok, render.table(intended)


def float64_figures(report: Report) -> dict:
    """Worst elementwise max_rel and worst normwise norm_rel (max |x - ref| / max |ref|), with their tensors.

    The float64 properties assert norm_rel <= 1e-12 (issue 3's "max rel error"; README, tolerance
    policy). Elementwise, an element that cancels to near zero keeps the rounding of its terms
    (tests/test_compare.py shows the reference against itself past 1e-12). A one-element tensor is
    its own norm: in 1000 torch draws a 1x1 kernel gradient (input and hidden size 1) reached
    norm_rel 7.5e-13. A whole gradient tensor can be small in the same way: in a drawn 2-layer
    bidirectional relu RNN without bias, masked (lengths 4, 2, 2), every gradient of the top layer's
    backward direction was ~4e-7 where the model's largest gradient was 0.40; torch's kernel gradient
    there came out 1.1e-18 off, norm_rel 2.7e-12 of itself, 2.8e-18 of the model's gradient scale and
    1.2e-5 of its allowance. So for gradients the normwise figure divides by the model's largest
    gradient, as the policy's own allowance does (verify/tolerance.py); other tensors by their own
    largest value.
    """
    measured = [c for c in report.checks if c.quantity not in ("accuracy", "parameter")]
    elem = max(measured, key=lambda c: np.inf if c.max_rel is None else c.max_rel)
    scales = [c.max_abs / c.norm_rel for c in measured if c.quantity == "gradient" and 0 < c.norm_rel < np.inf]
    gradient_scale = max(scales, default=0.0)

    def normwise(c: Check) -> float:
        if c.quantity == "gradient" and gradient_scale > 0 and np.isfinite(c.max_abs):
            return c.max_abs / gradient_scale
        return c.norm_rel
    norm = max(measured, key=normwise)
    return {"max_rel": np.inf if elem.max_rel is None else elem.max_rel, "max_rel_at": f"{elem.quantity}/{elem.name}",
            "norm_rel": normwise(norm), "norm_rel_at": f"{norm.quantity}/{norm.name}"}


def record(kind: str, **fields: object) -> None:
    """Append one line of figures to $VERIFY_STATS (for the issue's report); no-op when unset."""
    path = os.environ.get("VERIFY_STATS")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"kind": kind, **fields}) + "\n")


def finite_difference_errors(case: Case, eps: float = 1e-6) -> dict[str, float]:
    """Max |analytic - central difference| per gradient (parameters, inputs, initial states)."""
    from reference import model
    from reference.layout import initial_state_gradient_name

    spec, params, batch = case.spec, case.params, case.batch
    grads = model.evaluate(spec, params, batch)["gradient"]

    def loss_with(name: str, idx: tuple, delta: float) -> float:
        p = dict(params)
        x, states = batch.inputs, dict(batch.initial_state)
        if name in p:
            p[name] = p[name].copy()
            p[name][idx] += delta
        elif name == "inputs":
            x = x.copy()
            x[idx] += delta
        else:
            state = next(s for s in states if initial_state_gradient_name(s) == name)
            states[state] = states[state].copy()
            states[state][idx] += delta
        return model.loss_only(spec, p, Batch(x, batch.targets, states, *_extra(batch)))

    errors = {}
    for name, g in grads.items():
        num = np.zeros_like(g)
        for idx in np.ndindex(g.shape):
            num[idx] = (loss_with(name, idx, eps) - loss_with(name, idx, -eps)) / (2 * eps)
        errors[name] = float(np.max(np.abs(num - g))) if g.size else 0.0
    return errors


def _extra(batch: Batch) -> tuple:
    """Fields of Batch after initial_state (lengths, when the Batch has them)."""
    from dataclasses import fields
    names = [f.name for f in fields(Batch)][3:]
    return tuple(getattr(batch, n) for n in names)
