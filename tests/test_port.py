"""`port`: Keras -> torch -> Keras and TF1 checkpoint -> torch keep every weight bit for bit; a conversion
that does not verify is not written."""
from collections import OrderedDict

import numpy as np
import pytest

from verify.cli import main


def _keras_weights(path) -> list[np.ndarray]:
    from adapters import readers
    return [np.asarray(w) for w in readers.load_keras_model(str(path)).get_weights()]


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory):
    """A user-style Sequential mixing every weighted layer kind, with drawn float32 weights."""
    from adapters.tf_import import import_tf
    _, keras = import_tf()
    d = tmp_path_factory.mktemp("port")
    model = keras.Sequential([
        keras.Input((6,), dtype="int32"), keras.layers.Embedding(9, 3, name="embed"),
        keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True), merge_mode="sum", name="bi"),
        keras.layers.GRU(3, return_sequences=True, name="gru"),
        keras.layers.SimpleRNN(2, name="srnn"), keras.layers.Dense(3, activation="softmax", name="head")])
    rng = np.random.default_rng(1)
    model.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    model.save(d / "model.keras")
    return d / "model.keras"


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_keras_to_torch_to_keras_is_bit_identical(keras_file, tmp_path, suffix: str) -> None:
    torch_file, back = tmp_path / f"port{suffix}", tmp_path / "back.keras"
    assert main(["port", str(keras_file), "--to", "torch", "-o", str(torch_file), "--quiet"]) == 0
    assert main(["port", str(torch_file), "--to", "keras", "--like", str(keras_file), "-o", str(back), "--quiet"]) == 0
    original, returned = _keras_weights(keras_file), _keras_weights(back)
    assert len(original) == len(returned)
    assert all(a.dtype == b.dtype and np.array_equal(a, b) for a, b in zip(original, returned))


def test_tf1_checkpoint_to_torch_is_bit_identical(tmp_path) -> None:
    """Kernels and biases as TF1 stores them, in torch's layout; the forget-gate bias holds forget_bias folded in
    once in float32 (torch has no run-time forget_bias)."""
    import torch

    from adapters import tf1_checkpoint
    from reference.layers import Dense, Recurrent
    from reference.params import init_params
    from reference.stack import StackSpec
    spec = StackSpec("tf1", 3, (Recurrent("rnn/0", "lstm", 4, forget_bias=1.0), Recurrent("rnn/1", "lstm", 4,
                                                                                          forget_bias=1.0),
                                Dense("head", 2)))
    params = {k: v.astype(np.float32).astype(np.float64) for k, v in init_params(spec, np.random.default_rng(2)).items()}
    tf1_checkpoint.write_checkpoint(str(tmp_path / "model"), spec, params)
    out = tmp_path / "port.pt"
    assert main(["port", str(tmp_path / "model"), "--to", "torch", "-o", str(out), "--forget-bias", "1.0",
                 "--quiet"]) == 0
    sd = torch.load(out, weights_only=True)
    for k in (0, 1):
        kernel = np.asarray(sd[f"rnn_{k}.weight_ih_l0"]).T
        assert np.array_equal(kernel, params[f"rnn/{k}/fw/kernel"].astype(np.float32))
        assert np.array_equal(np.asarray(sd[f"rnn_{k}.weight_hh_l0"]).T,
                              params[f"rnn/{k}/fw/recurrent_kernel"].astype(np.float32))
        bias = params[f"rnn/{k}/fw/bias"].astype(np.float32)
        bias[4:8] += np.float32(1.0)  # gate f
        assert np.array_equal(np.asarray(sd[f"rnn_{k}.bias_ih_l0"]), bias)
        assert not np.any(np.asarray(sd[f"rnn_{k}.bias_hh_l0"]))
    assert np.array_equal(np.asarray(sd["head.weight"]).T, params["head/kernel"].astype(np.float32))


def test_a_conversion_that_does_not_verify_is_not_written(keras_file, tmp_path, monkeypatch, capsys) -> None:
    """A converter bug (here: the GRU's gates left in Keras's order) exits 1 with the report and writes nothing."""
    from adapters import tables, torch_stack
    real = torch_stack.state_dict

    def buggy(model) -> "OrderedDict":
        sd = real(model)
        sd["gru.weight_ih_l0"] = tables.permute_blocks(sd["gru.weight_ih_l0"].T, (1, 0, 2)).T.copy()
        return sd
    monkeypatch.setattr(torch_stack, "state_dict", buggy)
    out = tmp_path / "port.pt"
    assert main(["port", str(keras_file), "--to", "torch", "-o", str(out), "--quiet"]) == 1
    text = capsys.readouterr().out
    assert not out.exists() and not list(tmp_path.iterdir())
    assert "gru/fw/kernel" in text and "gate blocks permuted" in text, text
