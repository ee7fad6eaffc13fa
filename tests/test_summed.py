"""reference/summed.py: a canonical tensor a framework trains as a sum of summands, each stepped by the optimiser."""
from __future__ import annotations

import numpy as np
import pytest

from reference import optimizers, summed

COPIES = {"b": 2}


def _params(seed: int = 0) -> tuple[dict, dict]:
    rng = np.random.default_rng(seed)
    p = {"w": rng.uniform(-1, 1, (3, 4)), "b": rng.uniform(-1, 1, 5)}
    return p, {n: rng.uniform(-2, 2, v.shape) for n, v in p.items()}


def test_summands_add_up_to_the_tensor_and_each_gets_the_whole_gradient() -> None:
    p, g = _params()
    e = summed.expand(p, COPIES)
    assert sorted(e) == ["b#0", "b#1", "w"]
    np.testing.assert_array_equal(e["b#0"] + e["b#1"], p["b"])
    eg = summed.expand_grads(g, COPIES)
    assert eg["b#0"] is g["b"] and eg["b#1"] is g["b"]
    back = summed.collapse(e, COPIES)
    assert back.keys() == p.keys() and all(np.array_equal(back[n], p[n]) for n in p)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam", "adagrad"])
def test_each_summand_takes_the_step_so_the_sum_moves_by_both(name: str) -> None:
    """Plain SGD: the sum moves by 2 lr g; any optimiser without L2 decay: twice the one tensor's own update."""
    p, g = _params(1)
    single, _ = optimizers.step(name, p, g, optimizers.init(name, p, "torch"), 0.1, "torch")
    double, _ = summed.step(name, p, g, summed.init(name, p, "torch", COPIES), 0.1, "torch", COPIES)
    np.testing.assert_allclose(double["b"] - p["b"], 2 * (single["b"] - p["b"]), rtol=1e-14, atol=1e-15)
    np.testing.assert_array_equal(double["w"], single["w"])


def test_global_norm_clipping_counts_the_gradient_once_per_summand() -> None:
    p, g = _params(2)
    after, _ = summed.step("sgd", p, g, summed.init("sgd", p, "torch", COPIES), 0.1, "torch", COPIES, clip_norm=0.5)
    norm = np.sqrt(np.sum(g["w"] ** 2) + 2 * np.sum(g["b"] ** 2))
    np.testing.assert_allclose(after["w"], p["w"] - 0.1 * g["w"] * 0.5 / (norm + optimizers.TORCH_CLIP_EPS),
                               rtol=1e-14)


@pytest.mark.parametrize("name", ["adagrad", "rmsprop", "rmsprop_centered", "adam"])
def test_l2_decay_under_an_adaptive_optimiser_is_refused_where_the_split_matters(name: str) -> None:
    p, _ = _params()
    with pytest.raises(ValueError) as e:
        summed.init(name, p, "torch", COPIES, weight_decay=0.01)
    assert "torch trains b as two tensors (bias_ih + bias_hh)" in str(e.value) and "\n" not in str(e.value)
    summed.init(name, p, "torch", {}, weight_decay=0.01)  # nothing summed: nothing to split
    summed.init(name, p, "keras", COPIES, weight_decay=0.01)  # Keras's decay is decoupled, linear in the weight
    summed.init("adamw", p, "torch", COPIES)  # so is AdamW's
