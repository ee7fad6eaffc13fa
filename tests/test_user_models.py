"""Acceptance: `compare` on users' Keras models and their hand-made torch ports (``tests/port_corpus.py``).

* ``corpus`` tests (no CLI): every correct port, loaded into a torch model assembled here by hand, predicts what
  the Keras model predicts; each user module's ``build()`` does too, and each of its buggy forwards does not;
  each injected bug changes the port's keys nowhere and its predictions somewhere.
* CLI tests: every correct case -> exit 0; every (case, bug) that applies -> exit 1 with the failing parameter
  check at the expected canonical name carrying the expected diagnosis; ``--torch-module`` with the correct
  factory -> 0 and with each buggy forward -> 1 on an output check; ``--inputs``/``--targets`` files -> used.
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest

from tests import port_corpus as pc

CASES = list(pc.CASES)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """case -> Built, each case's files written once (lazily: a -k selection builds only what it uses)."""
    built: dict[str, pc.Built] = {}

    def get(case: str) -> pc.Built:
        if case not in built:
            built[case] = pc.build_case(case, tmp_path_factory.mktemp(case), seed=0)
        return built[case]
    return get


@pytest.fixture(scope="module")
def bug_files(corpus):
    made: dict[tuple[str, str], tuple[Path, pc.Broken] | None] = {}

    def get(case: str, bug: str):
        if (case, bug) not in made:
            made[(case, bug)] = pc.write_bug(corpus(case), bug)
        return made[(case, bug)]
    return get


# ------------------------------------------------------------------ corpus self-checks (no project code)

# The torch model of each case, assembled here by hand: (op, torch module path, ...). Sizes come from port.pt.
HAND = {
    "simple_rnn": [("rnn", "rnn", "RNN"), ("last",), ("linear", "head")],
    "lstm": [("rnn", "rnn1", "LSTM"), ("last",), ("linear", "head"), ("act", "tanh")],
    "gru": [("rnn", "gru", "GRU"), ("last",), ("linear", "head")],
    "bidirectional_lstm_concat": [("rnn", "birnn", "LSTM"), ("last",), ("linear", "classifier"), ("act", "softmax")],
    "bidirectional_gru_sum": [("rnn", "rnn", "GRU"), ("sum_directions",), ("linear", "out")],
    "stacked_lstm_as_num_layers_2": [("rnn", "lstm", "LSTM"), ("last",), ("linear", "fc"), ("act", "tanh")],
    "gru_over_lstm": [("rnn", "lstm", "LSTM"), ("rnn", "gru", "GRU"), ("last",), ("linear", "head"),
                      ("act", "sigmoid")],
    "embedding_lstm_softmax": [("embed", "embed"), ("rnn", "rnn1", "LSTM"), ("last",), ("linear", "head"),
                               ("act", "softmax")],
    "masking_gru_timedistributed": [("masked_rnn", "rnn", "GRU"), ("linear", "proj"), ("act", "tanh")],
    "dropout_between": [("rnn", "rnn1", "RNN"), ("rnn", "rnn2", "LSTM"), ("last",), ("linear", "fc")],
    "nested_names": [("embed", "embedding"), ("rnn", "encoder.0.rnn", "LSTM"), ("rnn", "encoder.1.rnn", "GRU"),
                     ("last",), ("linear", "decoder.proj"), ("act", "tanh")],
}


def _place(root, path: str, module) -> None:
    import torch.nn as nn
    *parents, leaf = path.split(".")
    node = root
    for p in parents:
        if not hasattr(node, p):
            node.add_module(p, nn.Module())
        node = getattr(node, p)
    node.add_module(leaf, module)


def _hand_model(case: str, sd: dict):
    """(root module with exactly port.pt's parameters, forward function)."""
    import torch
    import torch.nn as nn
    root = nn.Module()
    ops = HAND[case]
    for op in ops:
        if op[0] in ("rnn", "masked_rnn"):
            path, kind = op[1], op[2]
            levels = sorted({int(k.split("_l")[-1].split("_")[0]) for k in sd if k.startswith(path + ".weight_ih_l")})
            w_ih, w_hh = sd[f"{path}.weight_ih_l0"], sd[f"{path}.weight_hh_l0"]
            _place(root, path, getattr(nn, kind)(w_ih.shape[1], w_hh.shape[1], num_layers=len(levels),
                                                batch_first=True,
                                                bidirectional=f"{path}.weight_ih_l0_reverse" in sd))
        elif op[0] == "linear":
            w = sd[op[1] + ".weight"]
            _place(root, op[1], nn.Linear(w.shape[1], w.shape[0]))
        elif op[0] == "embed":
            w = sd[op[1] + ".weight"]
            _place(root, op[1], nn.Embedding(*w.shape))

    def forward(x):
        raw, seq, last_rnn = x, x, None
        for op in ops:
            if op[0] == "embed":
                seq = root.get_submodule(op[1])(seq)
            elif op[0] == "rnn":
                last_rnn = root.get_submodule(op[1])
                seq, _ = last_rnn(seq)
            elif op[0] == "masked_rnn":  # Keras mask semantics, one step at a time: state and output carried
                rnn = root.get_submodule(op[1])
                keep = (raw != 0).any(dim=-1)
                h = seq.new_zeros(1, seq.shape[0], rnn.hidden_size)
                outs = []
                for t in range(seq.shape[1]):
                    _, h_new = rnn(seq[:, t:t + 1], h)
                    h = torch.where(keep[:, t].view(1, -1, 1), h_new, h)
                    outs.append(h[0])
                seq = torch.stack(outs, dim=1)
            elif op[0] == "last":
                if last_rnn.bidirectional:
                    hid = last_rnn.hidden_size
                    seq = torch.cat([seq[:, -1, :hid], seq[:, 0, hid:]], dim=-1)
                else:
                    seq = seq[:, -1]
            elif op[0] == "sum_directions":
                hid = last_rnn.hidden_size
                seq = seq[..., :hid] + seq[..., hid:]
            elif op[0] == "linear":
                seq = root.get_submodule(op[1])(seq)
            elif op[0] == "act":
                seq = torch.softmax(seq, dim=-1) if op[1] == "softmax" else getattr(torch, op[1])(seq)
        return seq
    return root, forward


def _keras_predict(b: pc.Built, x: np.ndarray) -> np.ndarray:
    from adapters.tf_import import import_tf
    _, keras = import_tf()
    model = keras.saving.load_model(b.model)
    return np.asarray(model(x, training=False), dtype=np.float64)


def _torch_input(x: np.ndarray):
    import torch
    return torch.from_numpy(x) if x.dtype == np.int64 else torch.from_numpy(x.astype(np.float64))


def _hand_predict(case: str, sd: dict, x: np.ndarray) -> np.ndarray:
    import torch
    root, forward = _hand_model(case, sd)
    root.load_state_dict(sd, strict=True)
    root.double().eval()
    with torch.no_grad():
        return forward(_torch_input(x)).numpy()


def test_corpus_names_the_required_cases_and_bugs() -> None:
    assert set(HAND) == set(pc.CASES)
    assert {"simple_rnn", "lstm", "gru", "bidirectional_lstm_concat", "bidirectional_gru_sum",
            "stacked_lstm_as_num_layers_2", "gru_over_lstm", "embedding_lstm_softmax", "masking_gru_timedistributed",
            "dropout_between", "nested_names"} <= set(pc.CASES)
    assert {"transposed_square_kernel", "permuted_gates", "bias_in_both", "swapped_directions",
            "shifted_embedding_rows"} <= set(pc.BUGS)


@pytest.mark.parametrize("case", CASES)
def test_corpus_correct_port_predicts_what_keras_predicts(case: str, corpus) -> None:
    b = corpus(case)
    sd = b.state_dict()
    assert all(v.dtype.is_floating_point and str(v.dtype) == "torch.float32" for v in sd.values())
    x = pc.sample_inputs(b, batch=4, seed=3)
    want = _keras_predict(b, x)
    got = _hand_predict(case, sd, x)
    assert got.shape == want.shape == ((4, pc.STEPS, b.output_size) if b.sequence_output else (4, b.output_size))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    assert np.ptp(want) > 1e-2  # a prediction that varies: the comparison means something


@pytest.mark.parametrize("case", CASES)
def test_corpus_user_module_matches_and_its_bugs_do_not(case: str, corpus, monkeypatch) -> None:
    import torch
    b = corpus(case)
    monkeypatch.syspath_prepend(str(b.dir))
    sd = b.state_dict()
    x = pc.sample_inputs(b, batch=4, seed=4)
    want = _keras_predict(b, x)

    def run(module_name: str) -> np.ndarray:
        m = importlib.import_module(module_name).build()
        assert list(m.state_dict()) == list(sd)
        m.load_state_dict(sd, strict=True)
        m.double().eval()
        with torch.no_grad():
            return m(_torch_input(x)).numpy()
    np.testing.assert_allclose(run(b.module), want, rtol=0, atol=1e-5)
    for v in b.variants:
        got = run(f"{b.module}_{v}")
        assert got.shape == want.shape, v
        assert np.max(np.abs(got - want)) > 1e-3, v


BUG_PAIRS = [(c, g) for c in CASES for g in pc.BUGS if g in pc.APPLIES[c]]
MODULE_BUGS = [(c, v) for c in CASES for v in pc.BUGGY_FORWARDS if v in pc.APPLIES[c]]


@pytest.mark.parametrize("case, bug", BUG_PAIRS)
def test_corpus_bug_keeps_keys_and_shapes_and_changes_predictions(case: str, bug: str, corpus, bug_files) -> None:
    b = corpus(case)
    path, broken = bug_files(case, bug)
    sd = b.state_dict()
    import torch
    bad = torch.load(path, weights_only=True)
    assert list(bad) == list(sd) and all(bad[k].shape == sd[k].shape for k in sd)
    assert any(not torch.equal(bad[k], sd[k]) for k in sd)
    x = pc.sample_inputs(b, batch=4, seed=5)
    assert np.max(np.abs(_hand_predict(case, bad, x) - _hand_predict(case, sd, x))) > 1e-3


@pytest.mark.parametrize("case", CASES)
def test_corpus_applies_table_matches_the_injectors(case: str, corpus, bug_files) -> None:
    b = corpus(case)
    found = {g for g in pc.BUGS if bug_files(case, g) is not None} | set(b.variants)
    assert found == set(pc.APPLIES[case])


def test_corpus_every_bug_and_buggy_forward_applies_somewhere() -> None:
    for name in [*pc.BUGS, *pc.BUGGY_FORWARDS]:
        assert sum(name in a for a in pc.APPLIES.values()) >= 2, name


# ------------------------------------------------------------------------------------------ the CLI

def _compare(capsys, tmp_path: Path, *args: str) -> tuple[int, dict | None, str]:
    from verify.cli import main
    report_path = tmp_path / "report.json"
    capsys.readouterr()
    rc = main(["compare", *args, "--quiet", "--json", str(report_path)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err, captured.err
    report = json.loads(report_path.read_text()) if report_path.exists() else None
    return rc, report, captured.out + captured.err


def _failing(report: dict, quantity: str) -> list[dict]:
    return [c for c in report["checks"] if c["quantity"] == quantity and not c["ok"]]


def _summary(report: dict | None) -> str:
    if report is None:
        return "no report"
    return "\n".join(f"{c['framework']}/{c['against']} {c['quantity']} {c['name']}: {c.get('diagnosis')}"
                     for c in report["checks"] if not c["ok"])


FLOAT64 = ["lstm", "bidirectional_gru_sum", "embedding_lstm_softmax", "masking_gru_timedistributed"]


@pytest.mark.parametrize("case", CASES)
def test_correct_port_is_equivalent_float32(case: str, corpus, capsys, tmp_path) -> None:
    b = corpus(case)
    rc, report, text = _compare(capsys, tmp_path, "--keras", str(b.model), "--torch", str(b.port))
    assert rc == 0, text + _summary(report)
    assert report["verdict"] == "equivalent"
    assert any(c["quantity"] == "parameter" and c["framework"] == "torch" for c in report["checks"])


@pytest.mark.parametrize("case", FLOAT64)
def test_correct_port_is_equivalent_float64(case: str, corpus, capsys, tmp_path) -> None:
    b = corpus(case)
    rc, report, text = _compare(capsys, tmp_path, "--keras", str(b.model), "--torch", str(b.port),
                                "--dtype", "float64", "--seed", "7")
    assert rc == 0, text + _summary(report)
    assert report["verdict"] == "equivalent"


@pytest.mark.parametrize("case, bug", BUG_PAIRS)
def test_porting_bug_is_named_at_its_parameter(case: str, bug: str, corpus, bug_files, capsys, tmp_path) -> None:
    path, broken = bug_files(case, bug)
    b = corpus(case)
    rc, report, text = _compare(capsys, tmp_path, "--keras", str(b.model), "--torch", str(path))
    assert rc == 1, text
    assert report["verdict"] == "mismatch"
    hits = [c for c in _failing(report, "parameter") if c["name"] == broken.expected]
    assert hits, f"no failing parameter check named {broken.expected} ({broken.what}):\n" + _summary(report)
    check = hits[0]
    assert (check["framework"], check["against"]) == ("torch", "tensorflow"), check
    assert broken.word in (check["diagnosis"] or "").lower(), (broken.word, check["diagnosis"])
    keras_layer, torch_module = broken.layer
    assert (check["layer"] or "").startswith(f"keras {keras_layer} / torch {torch_module}"), check["layer"]
    if broken.gates:
        assert check["gate"] in broken.gates, (check["gate"], broken.gates)


@pytest.mark.parametrize("case", CASES)
def test_torch_module_correct_factory_is_equivalent(case: str, corpus, capsys, tmp_path, monkeypatch) -> None:
    b = corpus(case)
    monkeypatch.syspath_prepend(str(b.dir))
    rc, report, text = _compare(capsys, tmp_path, "--keras", str(b.model), "--torch-module", b.factory,
                                "--torch", str(b.port))
    assert rc == 0, text + _summary(report)
    assert report["verdict"] == "equivalent"


@pytest.mark.parametrize("case, variant", MODULE_BUGS)
def test_torch_module_buggy_forward_fails_an_output_check(case: str, variant: str, corpus, capsys, tmp_path,
                                                          monkeypatch) -> None:
    b = corpus(case)
    assert variant in b.variants
    monkeypatch.syspath_prepend(str(b.dir))
    rc, report, text = _compare(capsys, tmp_path, "--keras", str(b.model), "--torch-module",
                                b.variant_factory(variant), "--torch", str(b.port))
    assert rc == 1, text
    assert report["verdict"] == "mismatch"
    outputs = [c for c in _failing(report, "output") if c["framework"] == "torch"]
    assert outputs, _summary(report)
    assert not _failing(report, "parameter"), "the weights are right; only the forward is wrong\n" + _summary(report)


@pytest.mark.parametrize("case, with_targets", [("lstm", True), ("embedding_lstm_softmax", True),
                                                ("masking_gru_timedistributed", False)])
def test_inputs_and_targets_files_are_used(case: str, with_targets: bool, corpus, capsys, tmp_path) -> None:
    b = corpus(case)
    batch = 7  # a batch size the CLI would not draw by itself
    x_path, y_path = tmp_path / "x.npy", tmp_path / "y.npy"
    np.save(x_path, pc.sample_inputs(b, batch=batch, seed=11, gaps=False))  # padding at the ends only
    args = ["--keras", str(b.model), "--torch", str(b.port), "--inputs", str(x_path)]
    if with_targets:
        np.save(y_path, pc.sample_targets(b, batch=batch, seed=12))
        args += ["--targets", str(y_path)]
    rc, report, text = _compare(capsys, tmp_path, *args)
    assert rc == 0, text + _summary(report)
    shapes = [c.get("shape") for c in report["checks"] if c["quantity"] == "output" and c.get("shape")]
    assert shapes and all(s[0] == batch for s in shapes), shapes


def test_masked_steps_anywhere_with_the_users_module(corpus, capsys, tmp_path, monkeypatch) -> None:
    """Keras's Masking skips an all-zero step wherever it is; the user's module (a step loop) does the same, so
    inputs with masked steps at the start and in the middle of a sequence are decidable: equivalent."""
    b = corpus("masking_gru_timedistributed")
    monkeypatch.syspath_prepend(str(b.dir))
    x_path = tmp_path / "x.npy"
    np.save(x_path, pc.sample_inputs(b, batch=5, seed=13, gaps=True))
    rc, report, text = _compare(capsys, tmp_path, "--keras", str(b.model), "--torch-module", b.factory,
                                "--torch", str(b.port), "--inputs", str(x_path))
    assert rc == 0, text + _summary(report)
