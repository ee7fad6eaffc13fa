"""The Python API users call from their own tests: compare_models and assert_equivalent."""
import numpy as np
import pytest

import verify
from verify import render


@pytest.fixture(scope="module")
def pair():
    """A Keras LSTM classifier and a torch port written by hand from torch's documented layout."""
    import torch

    from adapters.tf_import import import_tf
    _, keras = import_tf()
    rng = np.random.default_rng(0)
    model = keras.Sequential([keras.Input((5, 2)), keras.layers.LSTM(3, name="lstm"),
                              keras.layers.Dense(2, activation="softmax", name="out")])
    model.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype("float32") for w in model.get_weights()])

    class Port(torch.nn.Module):
        def __init__(self, last_step: int = -1) -> None:
            super().__init__()
            self.rnn = torch.nn.LSTM(2, 3, batch_first=True)
            self.out = torch.nn.Linear(3, 2)
            self.last_step = last_step

        def forward(self, x):
            return torch.softmax(self.out(self.rnn(x)[0][:, self.last_step]), dim=-1)

    def port(last_step: int = -1) -> "Port":
        module = Port(last_step)
        kernel, recurrent, bias, dense_kernel, dense_bias = (torch.from_numpy(w) for w in model.get_weights())
        with torch.no_grad():
            module.rnn.weight_ih_l0.copy_(kernel.T)
            module.rnn.weight_hh_l0.copy_(recurrent.T)
            module.rnn.bias_ih_l0.copy_(bias)
            module.rnn.bias_hh_l0.zero_()
            module.out.weight.copy_(dense_kernel.T)
            module.out.bias.copy_(dense_bias)
        return module
    return model, port


def test_compare_models_on_objects_is_equivalent(pair) -> None:
    model, port = pair
    report = verify.compare_models(model, port())
    assert report.verdict == "equivalent", render.table(report)
    assert {c.framework for c in report.checks} == {"tensorflow", "torch", "tensorflow~torch"}


def test_assert_equivalent_carries_the_failing_rows(pair) -> None:
    model, port = pair
    with pytest.raises(AssertionError) as e:
        verify.assert_equivalent(model, port(last_step=0), inputs=np.random.default_rng(1).uniform(-1, 1, (4, 5, 2)))
    text = str(e.value)
    assert text.startswith("verdict: mismatch") and "torch vs reference: output prediction" in text, text
    assert "parameter" not in text  # the weights are right: only the forward is wrong
