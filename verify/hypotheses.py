"""Known porting bugs as hypotheses tested on the reference: which bug reproduces a framework's results.

When a framework disagrees with the reference, each catalog entry that applies to the model is injected
into the reference (its description, weights, batch, or its results as the framework would report them),
the reference is run, and the entries whose outputs, states, loss and gradients match every tensor the
framework reported, within the allowances of the failed comparison, are the findings: "torch behaves like
the reference with gates i and f swapped in `rnn/0/fw`". Unlike ``verify/weights.py`` (two files' weights
differ), this is about behaviour: the framework computed with the weights read back from it, but did
something else with them.

The catalog (``CATALOG``) is data: each ``Entry`` has an id, a sentence completing "<framework> behaves
like the reference with ...", a scope (one direction of a recurrent layer, a recurrent layer, a Dense
layer, or the model), the cells it applies to and an ``inject`` function, pure, from (case, target) to
the injected case, or None where the entry does not apply. Each entry is tried at every target alone
and, where it applies at several, at all of them alike (a layout table or a cell class the layers share).
To add an entry, append one to ``CATALOG`` (tests/test_hypotheses.py then injects it and requires the
diagnosis to name it).

Cost: a hypothesis runs the reference's forward, and its backward only when the forward results match;
a zoo model has at most 126 hypotheses and takes under 0.1 s; ``LIMIT`` bounds a huge model.

Gradients: a framework reports the gradient of the tensors it holds. Where a bug moves weights (a gate
permutation, a doubled bias), it computes with T(w) while holding w, so its gradient is the pullback
T^T of the reference's gradient at T(w); each weight transform carries that pullback (every transform
here is linear; tests check each pullback is the adjoint of its transform).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from adapters.tables import permute_blocks
from reference import stack
from reference.layers import CANDIDATE, Dense, Dropout, Embedding, Masking, Recurrent, gate_activation
from reference.layout import GATE_STACKED, GATES, initial_state_gradient_name
from reference.spec import Batch
from reference.stack import StackSpec
from verify.report import Allowance, Check

Results = dict[str, dict[str, np.ndarray]]
Grads = dict[str, np.ndarray]
Pullback = Callable[[Grads], Grads]

QUANTITIES = ("output", "state", "loss", "gradient")  # what a finding must reproduce (accuracy is a count)
LIMIT = 2000        # hypotheses tried at most: a zoo model has < 200, so this only bounds a huge user model
SHOWN = 6           # findings listed one per note; the rest are counted
GATE_ACTS = ("sigmoid", "hard_sigmoid", "hard_sigmoid_keras2", "tanh")
ACT_WORDS = {"sigmoid": "sigmoid", "tanh": "tanh", "relu": "relu", "linear": "linear",
             "hard_sigmoid": "hard_sigmoid as Keras 3 and torch define it (relu6(x + 3) / 6)",
             "hard_sigmoid_keras2": "hard_sigmoid as Keras 2 defined it (clip(0.2 x + 0.5, 0, 1))"}
SYMMETRIC = ("sigmoid", "hard_sigmoid", "hard_sigmoid_keras2")  # s(-x) = 1 - s(x)


@dataclass(frozen=True)
class Case:
    """What the reference runs on: a description, its weights, and a batch giving every initial state."""

    spec: StackSpec
    params: dict[str, np.ndarray]
    batch: Batch


@dataclass(frozen=True)
class Target:
    """Where one hypothesis is injected: a layer (recurrent or Dense), one direction of a recurrent layer,
    or the whole model."""

    layer: Recurrent | Dense | None = None
    direction: str | None = None

    @property
    def where(self) -> str:
        if self.layer is None:
            return "the model"
        return f"{self.layer.name}/{self.direction}" if self.direction else self.layer.name

    @property
    def prefixes(self) -> tuple[str, ...]:
        """The canonical prefixes of the directions it covers."""
        directions = (self.direction,) if self.direction else self.layer.directions
        return tuple(f"{self.layer.name}/{d}" for d in directions)


@dataclass(frozen=True)
class Site:
    """Where one hypothesis is injected: one target, or every target of the model where the entry applies
    (a bug in a layout table or a cell class that every such layer shares)."""

    targets: tuple[Target, ...]

    @property
    def where(self) -> str:
        return ", ".join(t.where for t in self.targets)

    @property
    def words(self) -> str:
        """``where`` for a sentence: `rnn/0/fw`, or `rnn/0/fw` and `rnn/1/fw` alike."""
        names = [f"`{t.where}`" for t in self.targets]
        if len(names) == 1:
            return names[0]
        return f"{', '.join(names[:-1])} and {names[-1]} alike"


@dataclass(frozen=True)
class Injected:
    """A case with one bug in it, and how the framework would report the reference's results on it."""

    case: Case
    pullback: Pullback | None = None                     # parameter gradients at case.params -> at the weights held
    adjust: Callable[[Results], Results] | None = None   # the reference's results -> what the framework reports
    fields: dict = field(default_factory=dict)           # words for the entry's sentence


@dataclass(frozen=True)
class Entry:
    """One known porting bug."""

    id: str
    sentence: str        # completes "<framework> behaves like the reference with ..."; {where} and the fields
    scope: str           # "direction", "layer" (recurrent), "dense" or "model": what one hypothesis goes into
    cells: tuple[str, ...]   # recurrent cells it applies to (scopes "dense" and "model": none)
    inject: Callable[[Case, Target], Injected | None]   # None where it does not apply


@dataclass(frozen=True)
class Finding:
    """A hypothesis that reproduces every tensor the framework reported."""

    entry: str
    where: str
    sentence: str
    used: float          # the worst share of an allowance used (0: reproduced exactly)

    def text(self, framework: str) -> str:
        return f"{framework} behaves like the reference with {self.sentence}"


@dataclass(frozen=True)
class Diagnosis:
    """What ``diagnose`` found, and how many hypotheses it tried."""

    findings: tuple[Finding, ...]   # best first
    tried: int                      # hypotheses run on the reference


# ------------------------------------------------------------------------------------- weight transforms

def _map(params: dict, names: list[str], forward: Callable, adjoint: Callable) -> tuple[dict, Pullback]:
    """``forward`` applied to each tensor ``names``; the pullback applies ``adjoint`` to their gradients."""
    new = dict(params)
    for n in names:
        new[n] = forward(params[n])

    def pull(g: Grads) -> Grads:
        out = dict(g)
        for n in names:
            if n in out:
                out[n] = adjoint(out[n])
        return out
    return new, pull


def _chain(*pulls: Pullback | None) -> Pullback:
    """Pullback of transforms applied in order: the last transform's pullback runs first."""
    def pull(g: Grads) -> Grads:
        for p in reversed(pulls):
            g = p(g) if p is not None else g
        return g
    return pull


def _stacked(params: dict, prefix: str, suffixes: tuple[str, ...] = GATE_STACKED) -> list[str]:
    return [f"{prefix}/{s}" for s in suffixes if f"{prefix}/{s}" in params]


def _inverse(order: tuple[int, ...]) -> tuple[int, ...]:
    inv = [0] * len(order)
    for j, k in enumerate(order):
        inv[k] = j
    return tuple(inv)


def _transpose_blocks(blocks: tuple[int, ...], count: int) -> Callable[[np.ndarray], np.ndarray]:
    """Transpose the square blocks ``blocks`` of a (P, count*H) kernel with P = H (its own adjoint)."""
    def f(a: np.ndarray) -> np.ndarray:
        h = a.shape[1] // count
        out = a.copy()
        for j in blocks:
            out[:, j * h:(j + 1) * h] = a[:, j * h:(j + 1) * h].T
        return out
    return f


def _scale_block(block: int, count: int, factor: float) -> Callable[[np.ndarray], np.ndarray]:
    def f(a: np.ndarray) -> np.ndarray:
        h = a.shape[-1] // count
        out = a.copy()
        out[..., block * h:(block + 1) * h] *= factor
        return out
    return f


def _sum_into(params: dict, src: str, dst: str, keep: bool) -> tuple[dict, Pullback]:
    """dst + src into dst; src zero (``keep``) or gone. Pullback: both get dst's gradient."""
    new = dict(params)
    new[dst] = params[dst] + params[src]
    if keep:
        new[src] = np.zeros_like(params[src])
    else:
        del new[src]

    def pull(g: Grads) -> Grads:
        out = dict(g)
        if dst in g:
            out[src] = g[dst].copy()
        return out
    return new, pull


def _rename(params: dict, pairs: list[tuple[str, str]]) -> tuple[dict, Pullback]:
    """Swap the tensors of each pair of names (its own adjoint)."""
    new = dict(params)
    for a, b in pairs:
        new[a], new[b] = params[b], params[a]

    def pull(g: Grads) -> Grads:
        out = dict(g)
        for a, b in pairs:
            if a in g and b in g:
                out[a], out[b] = g[b], g[a]
        return out
    return new, pull


def _with_layer(spec: StackSpec, name: str, **changes: object) -> StackSpec:
    return replace(spec, layers=tuple(replace(l, **changes) if l.name == name else l for l in spec.layers))


def _layer(case: Case, t: Target) -> Recurrent | Dense:
    """The target layer as the case describes it now."""
    return next(l for l in case.spec.layers if l.name == t.layer.name)


def _batch_states(batch: Batch, states: dict[str, np.ndarray]) -> Batch:
    return Batch(batch.inputs, batch.targets, states, batch.lengths)


def _has_mask(case: Case) -> bool:
    return case.batch.lengths is not None or any(
        isinstance(l, Masking) or (isinstance(l, Embedding) and l.mask_zero) for l in case.spec.layers)


# ------------------------------------------------------------------------------------------ entries

def _permutation(cell: str, order: tuple[int, ...], sentence: str, ident: str,
                 only: tuple[str, ...] = GATE_STACKED) -> Entry:
    """The gate blocks of one direction's kernel, recurrent kernel and biases (or of the tensors ``only``
    names: a layout table wrong for one tensor) used in another order: slot j computed from block ``order[j]``."""
    inv = _inverse(order)

    def inject(case: Case, t: Target) -> Injected | None:
        names = _stacked(case.params, t.prefixes[0], only)
        if not names:
            return None
        params, pull = _map(case.params, names, lambda a: permute_blocks(a, order), lambda g: permute_blocks(g, inv))
        return Injected(replace(case, params=params), pull)
    return Entry(ident, sentence, "direction", (cell,), inject)


def _moved(gates: tuple[str, ...], order: tuple[int, ...]) -> str:
    return ", ".join(f"{gates[j]} from the {gates[k]} block" for j, k in enumerate(order) if j != k)


# subsets of a direction's gate-stacked tensors that a layout table can get wrong on their own
ONE_TENSOR_SUBSETS = (("kernels", ("kernel", "recurrent_kernel")), ("input kernel", ("kernel",)),
                      ("recurrent kernel", ("recurrent_kernel",)), ("biases", ("bias", "recurrent_bias")))


def _permutations() -> list[Entry]:
    notes = {("lstm", "f", "g"): " (TF1's and Keras 1's i, j, f, o order read as i, f, g, o)",
             ("lstm", "g", "o"): " (an i, f, o, g layout read as i, f, g, o)",
             ("gru", "z", "r"): " (torch's r, z, n order read as z, r, h)"}
    out = []
    for cell in ("lstm", "gru"):
        gates = GATES[cell]
        for a, b in itertools.combinations(range(len(gates)), 2):
            order = list(range(len(gates)))
            order[a], order[b] = b, a
            ga, gb = gates[a], gates[b]
            out.append(_permutation(cell, tuple(order), f"gates {ga} and {gb} swapped in {{where}}"
                                    + notes.get((cell, ga, gb), ""), f"{cell}_swap_{ga}{gb}"))
            # one table row wrong: the same swap in some of the gate-stacked tensors only
            for label, only in ONE_TENSOR_SUBSETS:
                out.append(_permutation(cell, tuple(order), f"gates {ga} and {gb} swapped in the {label} of {{where}} "
                                        f"only", f"{cell}_swap_{ga}{gb}_{'_'.join(only)}", only))
    named = [("lstm", (1, 2, 3, 0), "lstm_rotated_left", "rotated by one block"),
             ("lstm", (3, 0, 1, 2), "lstm_rotated_right", "rotated by one block the other way"),
             ("lstm", (2, 3, 0, 1), "lstm_rotated_two", "rotated by two blocks (halves swapped)"),
             ("lstm", (0, 2, 3, 1), "lstm_onnx_read", "read in ONNX's i, o, f, c order"),
             ("lstm", (0, 3, 1, 2), "lstm_onnx_written", "written in ONNX's i, o, f, c order and used as i, f, g, o"),
             ("gru", (1, 2, 0), "gru_rotated_left", "rotated by one block"),
             ("gru", (2, 0, 1), "gru_rotated_right", "rotated by one block the other way")]
    for cell, order, ident, how in named:
        out.append(_permutation(cell, order, f"the gate blocks of {{where}} {how}: {_moved(GATES[cell], order)}",
                                ident))
    return out


def _transposed(cell: str | None, gate: str | None) -> Entry:
    """The recurrent kernel's square gate blocks (all, or one gate's) used transposed: h @ U.T."""
    def inject(case: Case, t: Target) -> Injected | None:
        layer = _layer(case, t)
        if layer.output_width != layer.hidden_size:
            return None  # a projection makes the blocks (P, H): not square
        count = max(1, len(GATES[layer.cell]))
        blocks = (GATES[layer.cell].index(gate),) if gate else tuple(range(count))
        f = _transpose_blocks(blocks, count)
        params, pull = _map(case.params, [f"{t.prefixes[0]}/recurrent_kernel"], f, f)
        return Injected(replace(case, params=params), pull,
                        fields={"blocks": " (every gate block)" if count > 1 else ""})
    if gate is None:
        return Entry("recurrent_kernel_transposed", "the recurrent kernel of {where} used transposed{blocks}",
                     "direction", ("simple_rnn", "lstm", "gru"), inject)
    return Entry(f"{cell}_{gate}_block_transposed",
                 f"the {gate} block of the recurrent kernel of {{where}} used transposed", "direction", (cell,),
                 inject)


def _bias_doubled(case: Case, t: Target) -> Injected | None:
    pre = t.prefixes[0]
    if f"{pre}/bias" not in case.params or f"{pre}/recurrent_bias" in case.params:
        return None  # a GRU's two biases are two tensors; see the gru_* bias entries
    params, pull = _map(case.params, [f"{pre}/bias"], lambda a: 2 * a, lambda g: 2 * g)
    return Injected(replace(case, params=params), pull)


def _zeroed(*suffixes: str) -> Callable[[Case, Target], Injected | None]:
    def inject(case: Case, t: Target) -> Injected | None:
        names = _stacked(case.params, t.prefixes[0], suffixes)
        if not names:
            return None
        params, pull = _map(case.params, names, np.zeros_like, np.zeros_like)
        return Injected(replace(case, params=params), pull)
    return inject


def _gru_only_one_bias(missing: str) -> Callable[[Case, Target], Injected | None]:
    def inject(case: Case, t: Target) -> Injected | None:
        pre = t.prefixes[0]
        if f"{pre}/recurrent_bias" not in case.params:
            return None
        params, pull = _map(case.params, [f"{pre}/{missing}"], np.zeros_like, np.zeros_like)
        return Injected(replace(case, params=params), pull)
    return inject


def _gru_biases_summed(case: Case, t: Target) -> Injected | None:
    pre = t.prefixes[0]
    if f"{pre}/recurrent_bias" not in case.params:
        return None
    params, pull = _sum_into(case.params, f"{pre}/recurrent_bias", f"{pre}/bias", keep=True)
    return Injected(replace(case, params=params), pull)


def _forget_shift(kind: str) -> Callable[[Case, Target], Injected | None]:
    """The forget gate's pre-activation moved: by the layer's own forget_bias (missing: -fb, doubled: +fb),
    or by TF1's default 1.0 (one_missing: -1, one_added: +1) where that is not the same move."""
    def inject(case: Case, t: Target) -> Injected | None:
        layer = _layer(case, t)
        fb = layer.forget_bias
        delta = {"missing": -fb, "doubled": fb, "one_missing": -1.0, "one_added": 1.0}[kind]
        if delta == 0 or (kind == "one_missing" and fb == 1.0) or (kind == "one_added" and fb == -1.0):
            return None
        spec = _with_layer(case.spec, layer.name, forget_bias=fb + delta)
        return Injected(replace(case, spec=spec), fields={"fb": f"{fb:g}"})
    return inject


def _recurrent_activation(act: str) -> Callable[[Case, Target], Injected | None]:
    def inject(case: Case, t: Target) -> Injected | None:
        layer = _layer(case, t)
        if layer.recurrent_activation == act:
            return None
        spec = _with_layer(case.spec, layer.name, recurrent_activation=act)
        return Injected(replace(case, spec=spec), fields={"current": layer.recurrent_activation})
    return inject


def _gate_through(gate: str, act: str | None) -> Callable[[Case, Target], Injected | None]:
    """One gate through ``act`` (None: through the layer's recurrent_activation, for the candidate)."""
    def inject(case: Case, t: Target) -> Injected | None:
        layer = _layer(case, t)
        now = gate_activation(layer, gate)
        new = act or layer.recurrent_activation
        if now == new:
            return None
        overrides = tuple((g, a) for g, a in layer.gate_activations if g != gate) + ((gate, new),)
        spec = _with_layer(case.spec, layer.name, gate_activations=overrides)
        return Injected(replace(case, spec=spec), fields={"current": now, "act": new})
    return inject


def _activation(act: str) -> Callable[[Case, Target], Injected | None]:
    def inject(case: Case, t: Target) -> Injected | None:
        layer = _layer(case, t)
        if layer.activation == act:
            return None
        return Injected(replace(case, spec=_with_layer(case.spec, layer.name, activation=act)),
                        fields={"current": layer.activation})
    return inject


def _gru_reset_flipped(case: Case, t: Target) -> Injected:
    """reset_after flipped. After -> before: the recurrent bias can only be added outside the reset product,
    so it joins the input bias; before -> after: no recurrent bias (zeros, which the framework does not hold)."""
    layer = _layer(case, t)
    params, pulls = case.params, []
    for pre in t.prefixes:
        if layer.reset_after and f"{pre}/recurrent_bias" in params:
            params, pull = _sum_into(params, f"{pre}/recurrent_bias", f"{pre}/bias", keep=False)
            pulls.append(pull)
        elif not layer.reset_after and f"{pre}/bias" in params:
            params = {**params, f"{pre}/recurrent_bias": np.zeros_like(params[f"{pre}/bias"])}
    where = ("before the recurrent matmul (reset_after=False; the recurrent bias added to the input bias)"
             if layer.reset_after else "after the recurrent matmul (reset_after=True, no recurrent bias)")
    return Injected(Case(_with_layer(case.spec, layer.name, reset_after=not layer.reset_after), params, case.batch),
                    _chain(*pulls), fields={"placement": where})


def _gru_update_inverted(case: Case, t: Target) -> Injected | None:
    """h = (1 - z) h_prev + z hh: for a gate activation with s(-x) = 1 - s(x), the reference with the z
    block of every weight negated."""
    layer = _layer(case, t)
    if gate_activation(layer, "z") not in SYMMETRIC:
        return None
    names = [n for pre in t.prefixes for n in _stacked(case.params, pre)]
    f = _scale_block(0, 3, -1.0)
    params, pull = _map(case.params, names, f, f)
    return Injected(replace(case, params=params), pull)


def _directions_swapped(case: Case, t: Target) -> Injected | None:
    layer = _layer(case, t)
    if not layer.bidirectional:
        return None
    pre = layer.name
    pairs = [(n, f"{pre}/bw/{n[len(pre) + 4:]}") for n in case.params if n.startswith(f"{pre}/fw/")]
    params, pull = _rename(case.params, pairs)
    return Injected(replace(case, params=params), pull)


def _bw_order(order: str) -> Callable[[Case, Target], Injected | None]:
    def inject(case: Case, t: Target) -> Injected | None:
        layer = _layer(case, t)
        if not layer.bidirectional:
            return None
        if order == "not_realigned" and not layer.return_sequences:
            return None  # the last output of a bw direction left unaligned is the other last_output: see that entry
        return Injected(replace(case, spec=_with_layer(case.spec, layer.name, bw_order=order)))
    return inject


LAST_OUTPUT_WORDS = {"final": "Keras's: the backward direction after the whole reversed sequence",
                     "last_step": "torch's out[:, -1] and TF1's outputs[-1]: the backward direction after one step"}


def _last_output(case: Case, t: Target) -> Injected | None:
    layer = _layer(case, t)
    if not layer.bidirectional or layer.return_sequences:
        return None
    new = "last_step" if layer.last_output == "final" else "final"
    return Injected(replace(case, spec=_with_layer(case.spec, layer.name, last_output=new)),
                    fields={"how": LAST_OUTPUT_WORDS[new]})


def _first_step(case: Case, t: Target) -> Injected | None:
    layer = _layer(case, t)
    if layer.return_sequences or layer.last_output == "first_step":
        return None
    return Injected(replace(case, spec=_with_layer(case.spec, layer.name, last_output="first_step")))


def _time_major(case: Case, t: Target) -> Injected:
    return Injected(replace(case, spec=_with_layer(case.spec, t.layer.name, time_major=True)))


def _dense_activation_missing(case: Case, t: Target) -> Injected | None:
    layer = _layer(case, t)
    if layer.activation == "linear":
        return None
    return Injected(replace(case, spec=_with_layer(case.spec, layer.name, activation="linear")),
                    fields={"act": layer.activation})


def _merge(mode: str) -> Callable[[Case, Target], Injected | None]:
    def inject(case: Case, t: Target) -> Injected | None:
        layer = _layer(case, t)
        if not layer.bidirectional or layer.merge_mode in ("concat", mode):
            return None  # concat has another width: no merge of the same shape replaces it
        return Injected(replace(case, spec=_with_layer(case.spec, layer.name, merge_mode=mode)),
                        fields={"current": layer.merge_mode})
    return inject


def _go_backwards(case: Case, t: Target) -> Injected | None:
    layer = _layer(case, t)
    if layer.bidirectional:
        return None
    how = "forward in time (go_backwards ignored)" if layer.go_backwards else \
        "over the reversed sequence, outputs in processing order (go_backwards=True)"
    return Injected(replace(case, spec=_with_layer(case.spec, layer.name, go_backwards=not layer.go_backwards)),
                    fields={"how": how})


def _output_shift(case: Case, t: Target) -> Injected:
    return Injected(replace(case, spec=_with_layer(case.spec, t.layer.name, output_shift=1)))


def _zero_output(case: Case, t: Target) -> Injected | None:
    layer = _layer(case, t)
    if not _has_mask(case):
        return None
    new = not layer.zero_output_for_mask
    how = "zeros (zero_output_for_mask=True: torch's packed sequences, TF1)" if new else \
        "the last real step's output (zero_output_for_mask=False: Keras's default)"
    return Injected(replace(case, spec=_with_layer(case.spec, layer.name, zero_output_for_mask=new)),
                    fields={"how": how})


def _mask_ignored(case: Case, t: Target) -> Injected | None:
    if not _has_mask(case):
        return None
    layers = tuple(Dropout(l.name) if isinstance(l, Masking) else
                   replace(l, mask_zero=False) if isinstance(l, Embedding) else l for l in case.spec.layers)
    batch = Batch(case.batch.inputs, case.batch.targets, case.batch.initial_state, None)
    return Injected(Case(replace(case.spec, layers=layers), case.params, batch))


def _state_names(case: Case, t: Target) -> tuple[str, ...]:
    return stack.state_names(_layer(case, t), t.direction)


def _swap_results(quantity: str, a: str, b: str) -> Callable[[Results], Results]:
    def adjust(r: Results) -> Results:
        if quantity not in r or a not in r[quantity]:
            return r
        out = dict(r)
        out[quantity] = {**r[quantity], a: r[quantity][b], b: r[quantity][a]}
        return out
    return adjust


def _zero_results(quantity: str, names: tuple[str, ...]) -> Callable[[Results], Results]:
    """The framework never used these tensors, so it reports a zero gradient for them."""
    def adjust(r: Results) -> Results:
        if quantity not in r:
            return r
        out = dict(r)
        out[quantity] = {n: np.zeros_like(v) if n in names else v for n, v in r[quantity].items()}
        return out
    return adjust


def _initial_exchanged(case: Case, t: Target) -> Injected | None:
    layer = _layer(case, t)
    if layer.output_width != layer.hidden_size:
        return None
    h, c = _state_names(case, t)
    states = dict(case.batch.initial_state)
    if np.array_equal(states[h], states[c]):
        return None
    states[h], states[c] = states[c], states[h]
    # the tensor given as h is used as c: the framework reports the reference's c gradient for it
    adjust = _swap_results("gradient", initial_state_gradient_name(h), initial_state_gradient_name(c))
    return Injected(replace(case, batch=_batch_states(case.batch, states)), adjust=adjust)


def _final_exchanged(case: Case, t: Target) -> Injected | None:
    layer = _layer(case, t)
    if layer.output_width != layer.hidden_size:
        return None
    h, c = _state_names(case, t)
    return Injected(case, adjust=_swap_results("state", h, c))


def _ignored(which: str) -> Callable[[Case, Target], Injected | None]:
    """Initial states replaced by zeros: ``h`` or ``c`` of one direction, or ``all`` of the model."""
    def inject(case: Case, t: Target) -> Injected | None:
        states = dict(case.batch.initial_state)
        if which == "all":
            names = tuple(n for n in states if np.any(states[n] != 0))
            if len(names) < 2:
                return None  # one state: the same hypothesis as that state's entry
        else:
            names = (_state_names(case, t)[0 if which == "h" else 1],)
        if not any(np.any(states[n] != 0) for n in names):
            return None
        states.update({n: np.zeros_like(states[n]) for n in names})
        adjust = _zero_results("gradient", tuple(initial_state_gradient_name(n) for n in names))
        return Injected(replace(case, batch=_batch_states(case.batch, states)), adjust=adjust)
    return inject


def _positions(case: Case) -> tuple[int, int, int]:
    """(batch, positions, elements) of the prediction: what a loss averages over."""
    b, steps = case.batch.inputs.shape[:2]
    positions = b * steps if case.spec.return_sequences else b
    return b, positions, positions * case.spec.output_size


def _summed(over: str) -> Callable[[Case, Target], Injected | None]:
    """The loss summed instead of averaged: loss and every gradient times the count it averaged over."""
    def inject(case: Case, t: Target) -> Injected | None:
        b, positions, elements = _positions(case)
        factor = {"batch": b, "positions": positions, "elements": elements}[over]
        if factor == 1 or (over == "positions" and positions == b) or \
                (over == "elements" and (case.spec.loss != "mse" or elements == positions)):
            return None  # the same factor as another entry, or no sum over elements for this loss

        def adjust(r: Results) -> Results:
            out = dict(r)
            out["loss"] = {n: v * factor for n, v in r["loss"].items()}
            if "gradient" in r:
                out["gradient"] = {n: v * factor for n, v in r["gradient"].items()}
            return out
        return Injected(case, adjust=adjust, fields={"factor": factor})
    return inject


def _softmax_twice(case: Case, t: Target) -> Injected | None:
    if case.spec.loss != "prob_ce":
        return None
    return Injected(replace(case, spec=replace(case.spec, loss="softmax_ce")))


def _peepholes_ignored(case: Case, t: Target) -> Injected | None:
    layer = _layer(case, t)
    if not layer.use_peepholes:
        return None
    params = {n: v for n, v in case.params.items() if not (n.startswith(layer.name + "/")
                                                            and n.rsplit("/", 1)[-1].startswith("peephole_"))}
    return Injected(Case(_with_layer(case.spec, layer.name, use_peepholes=False), params, case.batch))


def _catalog() -> tuple[Entry, ...]:
    gated = ("lstm", "gru")
    entries = _permutations()
    entries.append(_transposed(None, None))
    entries += [_transposed(cell, gate) for cell in gated for gate in GATES[cell]]
    entries += [
        Entry("bias_doubled", "the bias of {where} counted twice (written into both of torch's bias_ih and "
              "bias_hh, which torch adds)", "direction", ("simple_rnn", "lstm", "gru"), _bias_doubled),
        Entry("bias_missing", "no bias in {where} (the bias in neither of torch's bias_ih and bias_hh)",
              "direction", ("simple_rnn", "lstm", "gru"), _zeroed("bias", "recurrent_bias")),
        Entry("gru_recurrent_bias_missing", "the recurrent bias of {where} left out (torch's bias_hh, Keras's "
              "bias[1]): only the input bias used", "direction", ("gru",), _gru_only_one_bias("recurrent_bias")),
        Entry("gru_input_bias_missing", "the input bias of {where} left out (torch's bias_ih, Keras's bias[0]): "
              "only the recurrent bias used", "direction", ("gru",), _gru_only_one_bias("bias")),
        Entry("gru_biases_summed", "the two biases of {where} summed into the input bias, as an LSTM's may be (a "
              "GRU's candidate needs its recurrent bias inside the reset product)", "direction", ("gru",),
              _gru_biases_summed),
        Entry("forget_bias_missing", "the forget_bias {fb} of {where} not applied (a run-time forget_bias left "
              "out of the port)", "layer", ("lstm",), _forget_shift("missing")),
        Entry("forget_bias_doubled", "the forget_bias {fb} of {where} applied twice (folded into the stored bias "
              "and added again at run time)", "layer", ("lstm",), _forget_shift("doubled")),
        Entry("forget_bias_one_missing", "the forget gate of {where} shifted by -1 (TF1's forget_bias 1.0 left "
              "out: not folded into the stored bias)", "layer", ("lstm",), _forget_shift("one_missing")),
        Entry("forget_bias_one_added", "the forget gate of {where} shifted by +1 (TF1's forget_bias 1.0 added at "
              "run time to a bias that already holds it)", "layer", ("lstm",), _forget_shift("one_added")),
    ]
    entries += [Entry(f"recurrent_activation_{act}", f"recurrent_activation {ACT_WORDS[act]} in {{where}} (the "
                      "description says {current})", "layer", gated, _recurrent_activation(act)) for act in GATE_ACTS]
    entries += [Entry(f"{cell}_{gate}_{act}", f"gate {gate} of {{where}} through {ACT_WORDS[act]} (the description "
                      "says {current})", "layer", (cell,), _gate_through(gate, act))
                for cell in gated for gate in GATES[cell] if gate != CANDIDATE[cell] for act in GATE_ACTS]
    entries += [Entry(f"{cell}_candidate_gated", f"the candidate {CANDIDATE[cell]} of {{where}} through {{act}} like "
                      "the other gates (the description says {current})", "layer", (cell,),
                      _gate_through(CANDIDATE[cell], None)) for cell in gated]
    entries += [Entry(f"activation_{act}", f"activation {act} in {{where}} (the description says {{current}})",
                      "layer", ("simple_rnn", "lstm", "gru"), _activation(act)) for act in ("tanh", "relu")]
    entries += [
        Entry("gru_reset_placement", "the reset gate of {where} applied {placement}", "layer", ("gru",),
              _gru_reset_flipped),
        Entry("gru_update_inverted", "the update gate of {where} used the other way round: h = (1 - z) h_prev + "
              "z candidate", "layer", ("gru",), _gru_update_inverted),
        Entry("directions_swapped", "the forward and backward weights of {where} swapped", "layer",
              ("simple_rnn", "lstm", "gru"), _directions_swapped),
        Entry("bw_forward_in_time", "the backward direction of {where} run forward in time (its input never "
              "reversed)", "layer", ("simple_rnn", "lstm", "gru"), _bw_order("forward")),
        Entry("bw_not_realigned", "the backward direction's outputs of {where} left in processing order (reversed "
              "twice: never re-aligned with the input steps)", "layer", ("simple_rnn", "lstm", "gru"),
              _bw_order("not_realigned")),
        Entry("bw_input_reversed_twice", "the backward direction's input of {where} reversed twice, so that it "
              "runs forward in time, and its outputs reversed as if it had not", "layer",
              ("simple_rnn", "lstm", "gru"), _bw_order("input_reversed_twice")),
        Entry("last_output_semantics", "the last output of {where} taken as {how}", "layer",
              ("simple_rnn", "lstm", "gru"), _last_output),
        Entry("last_output_first_step", "the last output of {where} taken at the first step (out[:, 0] where "
              "out[:, -1] was meant)", "layer", ("simple_rnn", "lstm", "gru"), _first_step),
        Entry("batch_first_missing", "{where} run along the batch axis: batch-first inputs read as time-major "
              "(torch's nn.RNN, nn.LSTM or nn.GRU without batch_first=True), from zero states", "layer",
              ("simple_rnn", "lstm", "gru"), _time_major),
    ]
    entries += [Entry(f"merge_{mode}", f"the directions of {{where}} merged by {mode} (the description says "
                      "{current})", "layer", ("simple_rnn", "lstm", "gru"), _merge(mode))
                for mode in ("sum", "ave", "mul")]
    entries += [
        Entry("go_backwards_flipped", "{where} run {how}", "layer", ("simple_rnn", "lstm", "gru"), _go_backwards),
        Entry("initial_states_exchanged", "(h, c) read as (c, h): the initial states of {where} exchanged",
              "direction", ("lstm",), _initial_exchanged),
        Entry("final_states_exchanged", "the final states of {where} returned as (c, h)", "direction", ("lstm",),
              _final_exchanged),
        Entry("initial_h_ignored", "the initial state h of {where} ignored (started from zeros)", "direction",
              ("simple_rnn", "lstm", "gru"), _ignored("h")),
        Entry("initial_c_ignored", "the initial cell state c of {where} ignored (started from zeros)", "direction",
              ("lstm",), _ignored("c")),
        Entry("initial_states_ignored", "every initial state ignored (the model started from zeros)", "model", (),
              _ignored("all")),
        Entry("outputs_lag", "the outputs of {where} one step late (each step outputs the state it started from)",
              "layer", ("simple_rnn", "lstm", "gru"), _output_shift),
        Entry("zero_output_for_mask_flipped", "padded steps of {where} giving {how}",
              "layer", ("simple_rnn", "lstm", "gru"), _zero_output),
        Entry("mask_ignored", "the padding mask ignored (padded steps run as real steps)", "model", (),
              _mask_ignored),
        Entry("loss_summed_over_batch", "the loss summed over the batch instead of averaged (loss and gradients "
              "x{factor})", "model", (), _summed("batch")),
        Entry("loss_summed_over_positions", "the loss summed over every position (batch x steps) instead of "
              "averaged (loss and gradients x{factor})", "model", (), _summed("positions")),
        Entry("loss_summed_over_elements", "the squared errors summed instead of averaged (torch's reduction='sum'; "
              "loss and gradients x{factor})", "model", (), _summed("elements")),
        Entry("softmax_twice", "a cross-entropy that applies softmax again to the softmax output (from_logits=True, "
              "or nn.CrossEntropyLoss after a softmax layer)", "model", (), _softmax_twice),
        Entry("peepholes_ignored", "the peephole connections of {where} ignored", "layer", ("lstm",),
              _peepholes_ignored),
        Entry("dense_activation_missing", "the {act} activation of Dense {where} left out", "dense", (),
              _dense_activation_missing),
    ]
    return tuple(entries)


CATALOG: tuple[Entry, ...] = _catalog()


# --------------------------------------------------------------------------------------- the engine

def targets(entry: Entry, spec: StackSpec) -> list[Target]:
    """Where ``entry`` could be injected in ``spec``, by its scope and cells (``inject`` may still decline)."""
    if entry.scope == "model":
        return [Target()]
    if entry.scope == "dense":
        return [Target(layer) for layer in spec.layers if isinstance(layer, Dense)]
    out = []
    for layer in spec.recurrent_layers:
        if layer.cell not in entry.cells:
            continue
        if entry.scope == "layer":
            out.append(Target(layer))
        else:
            out += [Target(layer, d) for d in layer.directions]
    return out


def full_case(spec: StackSpec, params: dict[str, np.ndarray], batch: Batch) -> Case:
    """The case with every initial state spelled out (zeros where the batch gives none)."""
    return Case(spec, params, _batch_states(batch, stack.initial_states(spec, batch)))


def _unchanged(case: Case, inj: Injected) -> bool:
    new = inj.case
    return (inj.adjust is None and new.spec == case.spec and new.batch.lengths is case.batch.lengths
            and new.params.keys() == case.params.keys()
            and all(np.array_equal(new.params[n], case.params[n]) for n in case.params)
            and all(np.array_equal(new.batch.initial_state[n], case.batch.initial_state[n])
                    for n in case.batch.initial_state))


def _forward(inj: Injected) -> tuple[Results, dict]:
    return stack.forward(inj.case.spec, inj.case.params, inj.case.batch)


def held_gradients(inj: Injected, original: dict[str, np.ndarray], grads: Grads) -> Grads:
    """Gradients at the injected weights -> those of the weights ``original`` the framework holds: the
    pullback, and zero for a weight the bug leaves unused; inputs and initial states as they are."""
    at = {n: g for n, g in grads.items() if n in inj.case.params}
    pulled = inj.pullback(at) if inj.pullback is not None else at
    out = {n: pulled[n] if n in pulled else np.zeros_like(v) for n, v in original.items()}
    out.update({n: g for n, g in grads.items() if n not in inj.case.params and n not in original})
    return out


def _gradients(inj: Injected, original: dict[str, np.ndarray], cache: dict) -> Grads:
    """The reference's gradients on the injected case, as the framework holding ``original`` reports them."""
    return held_gradients(inj, original, stack.backward(inj.case.spec, inj.case.params, cache))


def framework_view(case: Case, inj: Injected) -> Results:
    """What a framework with this bug reports: the reference on the injected case, gradients pulled back."""
    results, cache = _forward(inj)
    results["gradient"] = _gradients(inj, case.params, cache)
    return inj.adjust(results) if inj.adjust is not None else results


def _worst(results: Results, ref: Results, keys: list[tuple[str, str]], allowance: Callable[[str, str], Allowance],
           stop: float = 1.0) -> float:
    """The largest share of its allowance any tensor ``keys`` of ``results`` uses against ``ref``
    (|x - ref| <= atol + rtol |ref|, as verify/compare.py checks); stops early once above ``stop``."""
    worst = 0.0
    for q, n in keys:
        if n not in results.get(q, {}) or n not in ref.get(q, {}):
            return float("inf")
        x = np.asarray(results[q][n], dtype=np.float64)
        r = np.asarray(ref[q][n], dtype=np.float64)
        if x.shape != r.shape:
            return float("inf")
        a = allowance(q, n)
        # a NaN or infinity the bug reproduces at the same place is reproduced (a log of a negative "probability")
        same = (np.isnan(x) & np.isnan(r)) | (~np.isfinite(x) & (x == r))
        with np.errstate(invalid="ignore"):
            diff = np.where(np.isfinite(x) & np.isfinite(r), np.abs(x - r), np.where(same, 0.0, np.inf))
        limit = a.atol + a.rtol * np.abs(np.where(np.isfinite(r), r, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(diff == 0, 0.0, np.where(np.isinf(diff), np.inf, diff / limit))
        worst = max(worst, float(np.max(share)) if share.size else 0.0)
        if worst > stop:
            return worst
    return worst


def reported(results: Results, allowance: Callable[[str, str], Allowance]) -> list[tuple[str, str]]:
    """The (quantity, name) the framework reported and the comparison had an allowance for."""
    keys = []
    for q in QUANTITIES:
        for n in results.get(q, {}):
            try:
                allowance(q, n)
            except KeyError:
                continue  # not compared (a tensor only this framework shows)
            keys.append((q, n))
    return keys


def _inject(entry: Entry, case: Case, site: Site) -> Injected | None:
    """``entry`` injected at every target of ``site`` in turn (None unless it applies to each, in the same
    words: one sentence must describe them all)."""
    current, pulls, adjusts, fields = case, [], [], None
    for target in site.targets:
        try:
            inj = entry.inject(current, target)
        except ValueError:
            return None  # a description the bug cannot be written into
        if inj is None or (fields is not None and inj.fields != fields):
            return None
        current, fields = inj.case, inj.fields
        pulls.append(inj.pullback)
        adjusts.append(inj.adjust)
    if len(site.targets) == 1:
        return inj

    def adjust(r: Results) -> Results:
        for a in adjusts:
            r = a(r) if a is not None else r
        return r
    return Injected(current, _chain(*pulls), adjust if any(adjusts) else None, fields or {})


def hypotheses(case: Case, limit: int = LIMIT) -> list[tuple[Entry, Site, Injected]]:
    """Every entry injected wherever it applies and changes something, and at all those places at once
    when there are several, in catalog order; at most ``limit``."""
    out = []
    for entry in CATALOG:
        applied = []
        for target in targets(entry, case.spec):
            inj = _inject(entry, case, Site((target,)))
            if inj is not None and not _unchanged(case, inj):
                applied.append(target)
                out.append((entry, Site((target,)), inj))
        if len(applied) > 1:
            inj = _inject(entry, case, Site(tuple(applied)))
            if inj is not None:
                out.append((entry, Site(tuple(applied)), inj))
        if len(out) >= limit:
            return out[:limit]
    return out


def reproduces(case: Case, inj: Injected, results: Results, keys: list[tuple[str, str]],
               allowance: Callable[[str, str], Allowance]) -> float:
    """The worst share of an allowance the injected reference uses against the framework's ``results``
    (inf when above 1 or not comparable); the backward runs only when the forward results match."""
    with np.errstate(all="ignore"):  # a bug may overflow an exp; that tensor then simply does not match
        try:
            fwd, cache = _forward(inj)
        except (ValueError, FloatingPointError):
            return float("inf")
        adjust = inj.adjust or (lambda r: r)
        first = [k for k in keys if k[0] != "gradient"]
        if _worst(adjust(fwd), results, first, allowance) > 1.0:
            return float("inf")
        fwd["gradient"] = _gradients(inj, case.params, cache)
        worst = _worst(adjust(fwd), results, keys, allowance)
    return worst if worst <= 1.0 else float("inf")


def diagnose(spec: StackSpec, params: dict[str, np.ndarray], batch: Batch, results: Results,
             allowance: Callable[[str, str], Allowance], reference: Results | None = None,
             limit: int = LIMIT) -> Diagnosis:
    """The catalog entries that, injected into the reference on ``params`` (the weights read back from the
    framework) and ``batch`` (as the framework saw it, in float64), reproduce every output, state, loss and
    gradient in ``results`` within ``allowance`` (that of the failed comparison); exact reproductions first.

    ``reference``: the reference's own results; a hypothesis that also passes against them cannot tell the
    bug from no bug and is dropped."""
    case = full_case(spec, params, batch)
    keys = reported(results, allowance)
    tried = hypotheses(case, limit)
    found: list[tuple[float, int, Finding]] = []
    for index, (entry, site, inj) in enumerate(tried):
        used = reproduces(case, inj, results, keys, allowance)
        if used > 1.0:
            continue
        if reference is not None and reproduces(case, inj, reference, keys, allowance) <= 1.0:
            continue  # indistinguishable from the correct model on this batch
        sentence = entry.sentence.format(where=site.words, **inj.fields)
        found.append((used, index, Finding(entry.id, site.where, sentence, used)))
    found.sort(key=lambda f: (f[0], f[1]))
    return Diagnosis(tuple(f for _, _, f in found), len(tried))


def notes(framework: str, diagnosis: Diagnosis) -> list[str]:
    """One note per finding (the first ``SHOWN``), or one saying that none was found."""
    if not diagnosis.findings:
        return [f"no known porting bug reproduces {framework}'s results; {diagnosis.tried} hypotheses tried"]
    out = [f.text(framework) + ("; reproduced exactly" if f.used == 0 else
                                "; every tensor it reported within its allowance (the worst at "
                                f"{max(f.used, 0.01):.0%} of it)") for f in diagnosis.findings[:SHOWN]]
    if len(diagnosis.findings) > SHOWN:
        out.append(f"... and {len(diagnosis.findings) - SHOWN} more known porting bugs reproduce {framework}'s results")
    return out


def annotate(framework: str, diagnosis: Diagnosis, checks: list[Check], label: str | None = None) -> list[Check]:
    """The framework's failing result checks against the reference with the best finding as their diagnosis
    (a check that already has one, a weight-level diagnosis, keeps it); ``label`` names the framework in it."""
    if not diagnosis.findings:
        return checks
    top = diagnosis.findings[0]
    more = len(diagnosis.findings) - 1
    text = top.text(label or framework) + (f" (or {more} other known porting bug{'s' if more > 1 else ''}: see the notes)"
                                  if more else "")
    return [replace(c, diagnosis=text) if needs_diagnosis(c, framework) else c for c in checks]


def needs_diagnosis(check: Check, framework: str) -> bool:
    """A failing result check of ``framework`` against the reference, with no diagnosis yet."""
    return (check.framework == framework and check.against == "reference" and not check.ok
            and check.quantity != "parameter" and check.diagnosis is None)
