"""Diagnosis by known porting bugs (verify/hypotheses.py): every catalog entry, injected into the reference,
is named by the diagnosis; correct results name none; and real bugs in torch models are named end to end."""
from __future__ import annotations

import time

import numpy as np
import pytest

from reference import stack
from reference.layers import Dense, Embedding, Masking, Recurrent
from reference.stack import StackSpec
from tests.stack_strategies import make_stack_case
from verify import engine, hypotheses, render
from verify.hypotheses import CATALOG, Case, Entry

# Small stacks between them meeting every entry's conditions (bidirectional layers, a GRU either side of
# reset_after, gates other than sigmoid, peepholes and forget_bias, masks, a softmax output). Batch 3,
# 4 steps, weights uniform per element, biases and every initial state non-zero (make_stack_case).
POOL = (
    StackSpec("lstms", 2, (Recurrent("lstm_a", "lstm", 3, bidirectional=True),
                           Recurrent("lstm_b", "lstm", 3), Dense("dense", 3, "tanh"), Dense("head", 2))),
    StackSpec("gru_sum", 2, (Recurrent("gru", "gru", 3, bidirectional=True, merge_mode="sum",
                                       return_sequences=False), Dense("head", 3, "softmax")),
              loss="prob_ce", accuracy="argmax"),
    StackSpec("tf1_lstm", 2, (Recurrent("lstm", "lstm", 3, recurrent_activation="hard_sigmoid_keras2",
                                        use_peepholes=True, forget_bias=0.5), Dense("head", 2))),
    StackSpec("gru_before", 2, (Recurrent("gru", "gru", 3, reset_after=False, recurrent_activation="hard_sigmoid",
                                          go_backwards=True), Dense("head", 2))),
    StackSpec("masked_rnn", 2, (Masking("masking"), Recurrent("rnn", "simple_rnn", 3, activation="relu",
                                                              bidirectional=True, merge_mode="ave"),
                                Dense("head", 2))),
    StackSpec("ids", 0, (Embedding("embed", 6, 3, mask_zero=True), Recurrent("lstm", "lstm", 3, return_sequences=False),
                         Dense("head", 3, "softmax")), loss="prob_ce", accuracy="argmax"),
)
F64 = "float64"


def _case(spec: StackSpec, seed: int = 3) -> tuple[Case, dict, dict]:
    """The pool model's case (float64, every initial state given), its reference results and allowances."""
    c = make_stack_case(spec, seed, batch=3, steps=4)
    ref, allow = engine.reference_and_allowances(spec, c.params, c.batch, F64)
    return hypotheses.full_case(spec, c.params, c.batch), ref, allow


CASES = {spec.name: _case(spec) for spec in POOL}


def _fails(results: dict, ref: dict, allow: dict) -> bool:
    keys = hypotheses.reported(results, lambda q, n: allow[(q, n)])
    return hypotheses._worst(results, ref, keys, lambda q, n: allow[(q, n)], stop=float("inf")) > 1.0


def _injection(entry: Entry):
    """The first pool model the entry applies to, injected at its LAST applicable target (so that a diagnosis
    that always named the first layer or direction would be caught), with results that fail against the
    reference: (case, reference, allowances, target, injected, the framework results it gives)."""
    for spec in POOL:
        case, ref, allow = CASES[spec.name]
        for target in reversed(hypotheses.targets(entry, spec)):
            inj = entry.inject(case, target)
            if inj is None or hypotheses._unchanged(case, inj):
                continue
            results = hypotheses.framework_view(case, inj)
            if _fails(results, ref, allow):
                return case, ref, allow, target, inj, results
    pytest.fail(f"no model in POOL that catalog entry {entry.id} applies to and changes: add one")


def test_catalog_has_at_least_30_entries_with_unique_ids() -> None:
    ids = [e.id for e in CATALOG]
    assert len(ids) >= 30, f"the catalog has {len(ids)} entries"
    assert len(set(ids)) == len(ids), sorted({i for i in ids if ids.count(i) > 1})
    for e in CATALOG:
        assert e.scope in ("direction", "layer", "dense", "model"), (e.id, e.scope)
        assert ("{where}" in e.sentence) == (e.scope != "model"), f"{e.id}: its sentence must name where: {e.sentence}"


@pytest.mark.parametrize("entry", CATALOG, ids=lambda e: e.id)
def test_an_injected_bug_is_named(entry: Entry) -> None:
    case, ref, allow, target, inj, results = _injection(entry)
    diagnosis = hypotheses.diagnose(case.spec, case.params, case.batch, results, lambda q, n: allow[(q, n)],
                                    reference=ref)
    named = [(f.entry, f.where) for f in diagnosis.findings]
    assert (entry.id, target.where) in named, (f"{entry.id} injected into {target.where} of {case.spec.name}; "
                                               f"the diagnosis named {named} ({diagnosis.tried} tried)")
    finding = next(f for f in diagnosis.findings if (f.entry, f.where) == (entry.id, target.where))
    assert finding.used == 0.0, f"{entry.id}: its own results use {finding.used:.3g} of the allowance, not 0"
    assert f"`{target.where}`" in finding.sentence or entry.scope == "model", finding.sentence
    parts = entry.id.split("_")
    if "swap" in parts:  # lstm_swap_if[_kernel...]: the sentence names gates i and f (in those tensors only)
        a, b = parts[2]
        where = f"`{target.where}`" if len(parts) == 3 else f"of `{target.where}` only"
        assert f"gates {a} and {b} swapped in " in finding.sentence and where in finding.sentence, finding.sentence
    elif entry.id.endswith("_block_transposed"):  # lstm_o_block_transposed: the o block
        assert finding.sentence.startswith(f"the {parts[1]} block of the recurrent kernel of `{target.where}`"), \
            finding.sentence
    elif len(parts) >= 3 and parts[0] in ("lstm", "gru") and len(parts[1]) == 1:  # lstm_o_tanh: gate o
        assert finding.sentence.startswith(f"gate {parts[1]} of `{target.where}` through "), finding.sentence
    assert finding.text("torch").startswith("torch behaves like the reference with "), finding.text("torch")


@pytest.mark.parametrize("spec", POOL, ids=lambda s: s.name)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_correct_results_name_no_bug(spec: StackSpec, dtype: str) -> None:
    """The reference's own results (rounded to the dtype) against the allowances of that dtype."""
    c = make_stack_case(spec, 5, batch=3, steps=4)
    ref, allow = engine.reference_and_allowances(spec, c.params, c.batch, dtype)
    rounded = {q: {n: np.asarray(v).astype(dtype) for n, v in t.items()} for q, t in ref.items()}
    diagnosis = hypotheses.diagnose(spec, c.params, engine.seen_by(c.batch, dtype), rounded,
                                    lambda q, n: allow[(q, n)], reference=ref)
    assert diagnosis.findings == (), [f.text("torch") for f in diagnosis.findings]
    assert diagnosis.tried > 10, f"only {diagnosis.tried} hypotheses apply to {spec.name}"


@pytest.mark.parametrize("ident", ["lstm_swap_if", "gru_swap_zr", "lstm_onnx_read", "lstm_o_tanh",
                                   "recurrent_activation_sigmoid", "directions_swapped", "bias_doubled",
                                   "loss_summed_over_batch", "outputs_lag", "bw_forward_in_time"])
def test_the_injected_bug_ranks_first(ident: str) -> None:
    entry = next(e for e in CATALOG if e.id == ident)
    case, ref, allow, target, inj, results = _injection(entry)
    found = hypotheses.diagnose(case.spec, case.params, case.batch, results, lambda q, n: allow[(q, n)],
                                reference=ref).findings
    assert found and (found[0].entry, found[0].where) == (ident, target.where), \
        f"injected {ident} at {target.where}; ranked: {[(f.entry, f.where, f.used) for f in found]}"


@pytest.mark.parametrize("ident", ["lstm_swap_fg", "gru_reset_placement", "lstm_f_tanh", "initial_states_exchanged",
                                   "loss_summed_over_positions"])
def test_an_injected_bug_is_named_through_float32_rounding(ident: str) -> None:
    """A framework computes in float32: the injected results rounded, and the float32 policy's allowances."""
    entry = next(e for e in CATALOG if e.id == ident)
    case, _, _, target, _, results = _injection(entry)
    ref, allow = engine.reference_and_allowances(case.spec, case.params, case.batch, "float32")
    rounded = {q: {n: np.asarray(v).astype(np.float32) for n, v in t.items()} for q, t in results.items()}
    found = hypotheses.diagnose(case.spec, case.params, engine.seen_by(case.batch, "float32"), rounded,
                                lambda q, n: allow[(q, n)], reference=ref).findings
    assert (ident, target.where) in [(f.entry, f.where) for f in found], [(f.entry, f.where, f.used) for f in found]


@pytest.mark.parametrize("entry", CATALOG, ids=lambda e: e.id)
def test_a_weight_transform_pulls_gradients_back_through_its_adjoint(entry: Entry) -> None:
    """For weights w and gradients y: <T(w), y> = <w, pullback(y)>, and T is linear (T(2w) = 2 T(w)): the
    gradient a framework holding w reports is the reference's at T(w), pulled back."""
    case, _, _, target, _, _ = _injection(entry)
    rng = np.random.default_rng(0)
    w = {n: rng.standard_normal(v.shape) for n, v in case.params.items()}
    inj = entry.inject(Case(case.spec, w, case.batch), target)
    twice = entry.inject(Case(case.spec, {n: 2 * v for n, v in w.items()}, case.batch), target)
    tw = inj.case.params
    for n in tw:
        np.testing.assert_allclose(twice.case.params[n], 2 * tw[n], rtol=1e-14, atol=0,
                                   err_msg=f"{entry.id}: the transform of {n} is not linear")
    y = {n: rng.standard_normal(v.shape) for n, v in tw.items()}
    pulled = hypotheses.held_gradients(inj, w, y)
    left = sum(float(np.sum(tw[n] * y[n])) for n in tw)
    right = sum(float(np.sum(w[n] * pulled[n])) for n in w)
    assert left == pytest.approx(right, rel=1e-12, abs=1e-12), \
        f"{entry.id}: <T(w), y> = {left} but <w, pullback(y)> = {right}"


def test_a_bug_in_every_layer_alike_is_named_once_for_all() -> None:
    """gates f and g swapped in every LSTM direction of the model (a shared layout table, a shared cell class)."""
    entry = next(e for e in CATALOG if e.id == "lstm_swap_fg")
    case, ref, allow = CASES["lstms"]
    site = hypotheses.Site(tuple(hypotheses.targets(entry, case.spec)))
    results = hypotheses.framework_view(case, hypotheses._inject(entry, case, site))
    found = hypotheses.diagnose(case.spec, case.params, case.batch, results, lambda q, n: allow[(q, n)],
                                reference=ref).findings
    assert [(f.entry, f.where) for f in found][:1] == [("lstm_swap_fg", "lstm_a/fw, lstm_a/bw, lstm_b/fw")], \
        [(f.entry, f.where) for f in found]
    assert "swapped in `lstm_a/fw`, `lstm_a/bw` and `lstm_b/fw` alike" in found[0].sentence, found[0].sentence


def test_a_zoo_diagnosis_takes_under_two_seconds() -> None:
    from reference.params import init_params
    from verify import zoo
    for name in ("lstm", "bidirectional", "stacked", "gru"):
        entry = zoo.get(name)
        rng = np.random.default_rng(0)
        params = init_params(entry.spec, rng)
        batch = entry.make_batch(entry.spec, rng)
        ref, allow = engine.reference_and_allowances(entry.spec, params, batch, "float32")
        wrong = {q: {n: v + 0.1 if q == "output" else v for n, v in t.items()} for q, t in ref.items()}
        t = time.perf_counter()
        diagnosis = hypotheses.diagnose(entry.spec, params, engine.seen_by(batch, "float32"), wrong,
                                        lambda q, n: allow[(q, n)], reference=ref)
        took = time.perf_counter() - t
        assert took < 2.0 and not diagnosis.findings, f"{name}: {took:.2f}s for {diagnosis.tried} hypotheses"


# ------------------------------------------------------------------------------ end to end, with torch

def test_a_torch_layout_table_with_f_and_g_swapped_is_named(monkeypatch) -> None:
    """A torch LSTM table that writes and reads the gate blocks f and g swapped (TF1's i, j, f, o taken for
    i, f, g, o): the weights read back are those built, but torch computes gates f and g swapped."""
    from adapters import tables, torch_nn
    from adapters.tables import TensorMap, permute_blocks
    order = (0, 2, 1, 3)
    monkeypatch.setitem(tables.TRANSFORMS, "transpose_fg", (lambda a: permute_blocks(a.T, order),
                                                            lambda a: permute_blocks(a, order).T))
    monkeypatch.setitem(tables.TRANSFORMS, "fg", (lambda a: permute_blocks(a, order),) * 2)
    broken = tuple(TensorMap(m.canonical, m.framework, {"transpose": "transpose_fg", "identity": "fg"}[m.transform])
                   if m.canonical != "projection" else m for m in tables.TORCH_LSTM)
    monkeypatch.setitem(torch_nn.TABLES, "lstm", broken)
    report = engine.compare_model("stacked", ("torch",), "float32", 0)
    # one table for every LSTM layer: the bug is in both layers of the model
    expected = "torch behaves like the reference with gates f and g swapped in `rnn/0/fw` and `rnn/1/fw` alike"
    assert report.verdict == "mismatch", render.table(report)
    assert all(c.ok for c in report.checks if c.quantity == "parameter"), render.failures(report)
    assert any(n.startswith(expected) for n in report.notes), report.notes
    assert (report.find("torch", "output", "prediction").diagnosis or "").startswith(expected), render.failures(report)
    assert expected in render.failures(report)


def test_a_torch_hard_sigmoid_of_the_wrong_definition_is_named(monkeypatch) -> None:
    """torch's loop LSTM given Keras 3's hard_sigmoid where the model says Keras 2's (the two definitions)."""
    from adapters import torch_nn
    from reference.spec import SequenceSpec
    from verify import zoo
    spec = stack.from_sequence(SequenceSpec("hs_lstm", 1, 4, 1, cell="lstm",
                                            recurrent_activation="hard_sigmoid_keras2"))
    monkeypatch.setitem(zoo.MODELS, "hs_lstm", zoo.ZooModel(spec, zoo._running_sum_all_states, ("torch",)))
    real = torch_nn._act
    monkeypatch.setattr(torch_nn, "_act", lambda name: real("hard_sigmoid" if name == "hard_sigmoid_keras2" else name))
    report = engine.compare_model("hs_lstm", ("torch",), "float32", 0)
    assert report.verdict == "mismatch", render.table(report)
    named = [n for n in report.notes if n.startswith("torch behaves like the reference with recurrent_activation "
                                                     "hard_sigmoid as Keras 3")]
    assert named and "in `rnn/0`" in named[0], report.notes
    first = next(n for n in report.notes if n.startswith("torch behaves"))
    assert first == named[0], f"the activation is not the first finding: {report.notes}"


def _swapped_lstm_module():
    """A user's module holding an nn.LSTM's tensors whose own forward splits the gates as f, i, g, o."""
    import torch

    class SwappedLSTM(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.lstm = torch.nn.LSTM(2, 3, batch_first=True)
            self.head = torch.nn.Linear(3, 2)

        def forward(self, x):
            h = x.new_zeros(x.shape[0], 3)
            c = x.new_zeros(x.shape[0], 3)
            outs = []
            for t in range(x.shape[1]):
                z = (x[:, t] @ self.lstm.weight_ih_l0.T + self.lstm.bias_ih_l0 + h @ self.lstm.weight_hh_l0.T
                     + self.lstm.bias_hh_l0)
                f, i, g, o = z.chunk(4, dim=1)  # the bug: torch's blocks are i, f, g, o
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                outs.append(h)
            return self.head(torch.stack(outs, dim=1))
    return SwappedLSTM()


def test_a_users_torch_module_with_gates_i_and_f_swapped_is_named() -> None:
    from verify import user
    spec = StackSpec("user", 2, (Recurrent("lstm", "lstm", 3), Dense("head", 2)))
    side = user.module_side(spec, _swapped_lstm_module(), "SwappedLSTM")
    spec, batch, _ = user.user_batch(spec, None, None, 0)
    report = user.compare_sides(spec, [side], batch, "float64", 0, ())
    expected = "torch behaves like the reference with gates i and f swapped in `lstm/fw`"
    assert report.verdict == "mismatch", render.table(report)
    assert any(n.startswith(expected) for n in report.notes), report.notes
    assert (report.find("torch", "output", "prediction").diagnosis or "").startswith(expected), render.failures(report)


def test_a_side_whose_own_weights_explain_its_results_is_told_so(monkeypatch) -> None:
    """A second side holding the weights with gates swapped and computing correctly on them: its weights, not its
    behaviour, are the bug (the parameter checks name it), and the report says so instead of a behaviour."""
    from adapters import registry
    from adapters.tables import permute_blocks
    from verify import user
    monkeypatch.setattr(registry, "versions_of", lambda fw: {})
    spec = StackSpec("user", 2, (Recurrent("lstm", "lstm", 3), Dense("head", 2)))
    c = make_stack_case(spec, 1)
    theirs = {n: permute_blocks(v, (1, 0, 2, 3)) if n.startswith("lstm/") else v for n, v in c.params.items()}

    def side(fw: str, params: dict) -> user.Side:
        return user.Side(fw, fw, params, lambda b, dt, p=params: stack.evaluate(spec, p, b))
    report = user.compare_sides(spec, [side("tensorflow", c.params), side("torch", theirs)], c.batch, "float64", 0, ())
    said = [n for n in report.notes if n.startswith("torch computes what the reference computes on the weights read back from it")]
    assert said, report.notes
    assert not any(n.startswith("torch behaves like") for n in report.notes), report.notes
    assert "gate" in (report.find("torch", "parameter", "lstm/fw/kernel").diagnosis or ""), render.failures(report)


def _port_module(batch_first: bool, last: int, activation: bool):
    """A user's torch port of LSTM -> Dense(tanh) on the last step, with one of the buggy forwards that
    tests/port_corpus.py writes (batch_first left out, out[:, 0] for out[:, -1], the activation left out)."""
    import torch

    class Port(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(1)
            self.lstm = torch.nn.LSTM(2, 3, batch_first=batch_first)
            self.head = torch.nn.Linear(3, 2)

        def forward(self, x):
            out, _ = self.lstm(x)
            y = self.head(out[:, last])
            return torch.tanh(y) if activation else y
    return Port()


@pytest.mark.parametrize("bug, options, expected", [
    ("forgot_batch_first", (False, -1, True), "`lstm` run along the batch axis"),
    ("wrong_last_step", (True, 0, True), "the last output of `lstm` taken at the first step"),
    ("missing_activation", (True, -1, False), "the tanh activation of Dense `head` left out"),
])
def test_a_users_buggy_torch_forward_is_named(bug: str, options: tuple, expected: str) -> None:
    from verify import user
    spec = StackSpec("user", 2, (Recurrent("lstm", "lstm", 3, return_sequences=False), Dense("head", 2, "tanh")))
    side = user.module_side(spec, _port_module(*options), bug)
    spec, batch, _ = user.user_batch(spec, None, None, 0)
    report = user.compare_sides(spec, [side], batch, "float64", 0, ())
    assert report.verdict == "mismatch", render.table(report)
    first = next((n for n in report.notes if n.startswith("torch behaves like")), None)
    assert first is not None and expected in first, f"{bug}: expected {expected!r} first; notes: {report.notes}"
