"""Adapters read models that users built themselves, and refuse what they cannot translate (the stack adapters,
on the layer stack of a SequenceSpec)."""
import numpy as np
import pytest

from adapters import keras_stack, torch_stack
from adapters.tf_import import import_tf
from reference import model
from reference.params import draw_batch
from reference.spec import Batch, SequenceSpec
from reference.stack import from_sequence

SPEC = SequenceSpec("user", input_size=3, hidden_size=5, output_size=2, activation="tanh")
STACK = from_sequence(SPEC)


def _batch() -> Batch:
    b = draw_batch(SPEC, np.random.default_rng(0), 4, 6, with_initial_state=False)
    return b


def test_keras_sequential_built_by_a_user() -> None:
    _, keras = import_tf()
    keras.utils.set_random_seed(1)
    user = keras.Sequential([keras.Input((None, 3)), keras.layers.SimpleRNN(5, return_sequences=True),
                             keras.layers.Dense(2)])
    user.layers[0].cell.bias.assign(np.linspace(-0.3, 0.3, 5))  # Keras initialises biases to zero
    params = keras_stack.extract(user, STACK)
    batch = _batch()
    expected = user(batch.inputs.astype("float32")).numpy()
    got = model.evaluate(SPEC, params, batch)["output"]["prediction"]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)  # float32 model vs float64 reference


def test_torch_module_built_by_a_user() -> None:
    import torch
    torch.manual_seed(1)

    class UserModel(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = torch.nn.RNN(3, 5, batch_first=True)
            self.out = torch.nn.Linear(5, 2)

        def forward(self, x):
            return self.out(self.encoder(x)[0])

    user = UserModel().double()
    tensors = {k: v.detach().numpy() for k, v in user.state_dict().items()}
    params = torch_stack.canonical(STACK, torch_stack.match_groups(STACK, tensors, "user"), torch_stack.by_owner(tensors))
    batch = _batch()
    expected = user(torch.tensor(batch.inputs)).detach().numpy()
    got = model.evaluate(SPEC, params, batch)["output"]["prediction"]
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-14)  # both float64; torch's two biases summed


def test_keras_model_with_an_unexpected_layer_is_refused() -> None:
    _, keras = import_tf()
    user = keras.Sequential([keras.Input((None, 3)), keras.layers.Conv1D(5, 2), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"unsupported layer Conv1D"):
        keras_stack.extract(user, STACK)


def test_wrong_shaped_parameters_name_the_tensor() -> None:
    bad = {"rnn/0/fw/kernel": np.zeros((4, 5)), "rnn/0/fw/recurrent_kernel": np.zeros((5, 5)),
           "rnn/0/fw/bias": np.zeros(5), "head/kernel": np.zeros((5, 2)), "head/bias": np.zeros(2)}
    with pytest.raises(ValueError, match=r"rnn/0/fw/kernel: expected shape \(3, 5\), got \(4, 5\)"):
        torch_stack.build(STACK, bad, "float32")


def test_nan_weights_are_refused() -> None:
    params = {"rnn/0/fw/kernel": np.full((3, 5), np.nan), "rnn/0/fw/recurrent_kernel": np.zeros((5, 5)),
              "rnn/0/fw/bias": np.zeros(5), "head/kernel": np.zeros((5, 2)), "head/bias": np.zeros(2)}
    with pytest.raises(ValueError, match="rnn/0/fw/kernel holds NaN"):
        model.evaluate(SPEC, params, _batch())
