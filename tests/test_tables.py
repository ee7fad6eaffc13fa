"""Layout tables: extraction inverts building, and structural errors name the tensor and both shapes."""
import numpy as np
import pytest

from adapters import tables


def test_torch_round_trip_transposes_and_sums_the_two_biases() -> None:
    rng = np.random.default_rng(0)
    params = {"rnn/0/fw/kernel": rng.normal(size=(3, 4)), "rnn/0/fw/recurrent_kernel": rng.normal(size=(4, 4)),
              "rnn/0/fw/bias": rng.normal(size=4)}
    fmt = {"layer": 0, "suffix": ""}
    stored = tables.from_canonical(tables.TORCH_RNN, params, "rnn/0/fw", fmt)
    assert stored["weight_ih_l0"].shape == (4, 3) and not stored["bias_hh_l0"].any()
    stored["bias_hh_l0"] = stored["bias_hh_l0"] + 0.25  # a trained torch model has both biases
    stored["bias_ih_l0"] = stored["bias_ih_l0"] - 0.25
    back = tables.to_canonical(tables.TORCH_RNN, stored, "rnn/0/fw", fmt)
    for name, value in params.items():
        np.testing.assert_allclose(back[name], value, rtol=0, atol=1e-15, err_msg=name)


def test_shape_error_names_tensor_and_both_shapes() -> None:
    with pytest.raises(ValueError, match=r"kernel has shape \(3, 4\), expected \(4, 3\)"):
        tables.check_shapes({"kernel": (4, 3)}, {"kernel": np.zeros((3, 4))}, "layer rnn")
