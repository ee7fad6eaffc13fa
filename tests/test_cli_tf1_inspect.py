"""`compare --tf1-checkpoint` against a torch port written by hand, and `inspect` on each kind of file."""
import json
from collections import OrderedDict

import numpy as np
import pytest

from verify.cli import main


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A TF1 two-layer BasicLSTMCell stack with a dense head, saved by Saver, and its weights."""
    from adapters import tf1_checkpoint
    from reference.layers import Dense, Recurrent
    from reference.params import init_params
    from reference.stack import StackSpec
    d = tmp_path_factory.mktemp("tf1")
    spec = StackSpec("tf1", 3, (Recurrent("rnn/0", "lstm", 4, forget_bias=1.0),
                                Recurrent("rnn/1", "lstm", 4, forget_bias=1.0), Dense("head", 2)))
    p = {k: v.astype(np.float32).astype(np.float64) for k, v in init_params(spec, np.random.default_rng(3)).items()}
    tf1_checkpoint.write_checkpoint(str(d / "model"), spec, p)
    return d, p


def _torch_port(p: dict, fold: bool) -> "OrderedDict":
    """TF1 -> torch by hand: TF1's kernel rows [x; h] split, columns i,j,f,o -> torch i,f,g,o, forget_bias folded."""
    import torch
    sd = OrderedDict()
    for k in (0, 1):
        bias = p[f"rnn/{k}/fw/bias"].astype(np.float32)
        if fold:
            bias[4:8] += np.float32(1.0)
        sd[f"lstm.weight_ih_l{k}"] = torch.from_numpy(p[f"rnn/{k}/fw/kernel"].T.astype(np.float32).copy())
        sd[f"lstm.weight_hh_l{k}"] = torch.from_numpy(p[f"rnn/{k}/fw/recurrent_kernel"].T.astype(np.float32).copy())
        sd[f"lstm.bias_ih_l{k}"] = torch.from_numpy(bias)
        sd[f"lstm.bias_hh_l{k}"] = torch.zeros(16)
    sd["fc.weight"] = torch.from_numpy(p["head/kernel"].T.astype(np.float32).copy())
    sd["fc.bias"] = torch.from_numpy(p["head/bias"].astype(np.float32))
    return sd


@pytest.mark.parametrize("fold, expected", [(True, 0), (False, 1)])
def test_tf1_checkpoint_against_a_torch_port(checkpoint, tmp_path, fold: bool, expected: int) -> None:
    import torch
    d, p = checkpoint
    torch.save(_torch_port(p, fold), tmp_path / "port.pt")
    report = tmp_path / "r.json"
    rc = main(["compare", "--tf1-checkpoint", str(d / "model"), "--torch", str(tmp_path / "port.pt"),
               "--json", str(report), "--quiet"])
    checks = json.loads(report.read_text())["checks"]
    assert rc == expected
    assert {c["framework"] for c in checks} >= {"tf1", "torch", "tf1~torch"}
    if not fold:
        bad = [c for c in checks if c["quantity"] == "parameter" and not c["ok"]]
        assert [c["name"] for c in bad] == ["rnn/0/fw/bias", "rnn/1/fw/bias"], bad
        assert all("forget-gate block moved by -1" in c["diagnosis"] for c in bad), bad
        assert all(c["ok"] for c in checks if c["framework"] == "tf1")  # TF1 itself agrees with the reference


def test_inspect_each_kind_of_file(checkpoint, tmp_path, capsys) -> None:
    import torch

    from adapters.tf_import import import_tf
    d, p = checkpoint
    _, keras = import_tf()
    model = keras.Sequential([keras.Input((4, 2)), keras.layers.GRU(3, name="gru"), keras.layers.Dense(2, name="out")])
    model.save(tmp_path / "m.keras")
    torch.save(_torch_port(p, True), tmp_path / "port.pt")
    assert main(["inspect", str(tmp_path / "m.keras"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    rows = {t["canonical"]: t for t in info["tensors"]}
    assert [l["kind"] for l in info["layers"]] == ["Recurrent", "Dense"]
    assert rows["gru/fw/kernel"]["shape"] == [2, 9] and rows["gru/fw/kernel"]["gates"] == "z,r,h"
    assert rows["gru/fw/kernel"]["torch"] == "gru.weight_ih_l0, transposed, gate blocks r,z,n -> z,r,h"
    assert rows["gru/fw/recurrent_bias"]["from"] == "Keras gru.bias[1]"
    assert main(["inspect", str(tmp_path / "port.pt")]) == 0
    text = capsys.readouterr().out
    assert "module lstm: nn.LSTM num_layers=2" in text and "module fc: nn.Linear" in text, text
    assert main(["inspect", str(d / "model")]) == 0
    text = capsys.readouterr().out
    assert "forget_bias=1.0" in text and "column blocks i,j,f,o -> i,f,g,o" in text, text
