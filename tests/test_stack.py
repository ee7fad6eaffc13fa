"""The layer-stack reference: its hand-written backward against finite differences, and its layer semantics."""
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference import stack
from reference.layers import Dense, Embedding, Masking, Recurrent
from reference.spec import Batch
from reference.stack import StackSpec
from tests.stack_strategies import make_stack_case, stack_specs
from verify.gradcheck import directional_check
from verify.render import table
from verify.report import Report


def _differentiable_inputs(case) -> bool:
    # Masking compares the inputs with the mask value: moving a padded input unmasks its step (a jump)
    return not case.spec.takes_ids and not isinstance(case.spec.layers[0], Masking)


def _point(case) -> dict:
    point = {f"param:{k}": v for k, v in case.params.items()}
    point.update({f"state:{k}": v for k, v in case.batch.initial_state.items()})
    if _differentiable_inputs(case):
        point["inputs"] = case.batch.inputs
    return point


def _loss_at(case):
    def f(point: dict) -> float:
        params = {k[6:]: v for k, v in point.items() if k.startswith("param:")}
        states = {k[6:]: v for k, v in point.items() if k.startswith("state:")}
        x = point.get("inputs", case.batch.inputs)
        return stack.loss_only(case.spec, params, Batch(x, case.batch.targets, states))
    return f


def _grads_at(case, grads: dict) -> dict:
    from reference.layout import initial_state_gradient_name
    out = {f"param:{k}": grads[k] for k in case.params}
    out.update({f"state:{k}": grads[initial_state_gradient_name(k)] for k in case.batch.initial_state})
    if _differentiable_inputs(case):
        out["inputs"] = grads["inputs"]
    return out


@given(spec=stack_specs(), seed=st.integers(0, 2**16))
def test_backward_matches_finite_differences_along_a_random_direction(spec: StackSpec, seed: int) -> None:
    """Every parameter, the inputs and every initial state at once, in one random direction (JAX check_vjp)."""
    case = make_stack_case(spec, seed)
    grads = stack.evaluate(case.spec, case.params, case.batch)["gradient"]
    check = directional_check(_loss_at(case), _point(case), _grads_at(case, grads), np.random.default_rng(seed))
    assert check.ok, table(Report("drawn stack", "float64", seed, ("reference",), {}, (check,), (repr(spec),)))


def test_every_gradient_element_of_a_mixed_stack_matches_central_differences() -> None:
    """Embedding -> LSTM -> bidirectional GRU (sum) -> Dense softmax: each element, not one direction."""
    spec = StackSpec("mixed", 0, (Embedding("emb", 5, 2), Recurrent("lstm", "lstm", 3),
                                  Recurrent("gru", "gru", 2, bidirectional=True, merge_mode="sum",
                                            return_sequences=False),
                                  Dense("head", 3, "softmax")), loss="prob_ce", accuracy="argmax")
    case = make_stack_case(spec, 4)
    grads = stack.evaluate(spec, case.params, case.batch)["gradient"]
    f, point = _loss_at(case), _point(case)
    claimed = _grads_at(case, grads)
    worst = {}
    for name, value in point.items():
        if name == "inputs":
            continue
        num = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            for sign in (1, -1):
                moved = dict(point)
                moved[name] = value.copy()
                moved[name][idx] += sign * 1e-6
                num[idx] += sign * f(moved) / 2e-6
        worst[name] = float(np.max(np.abs(num - claimed[name])))
    assert max(worst.values()) < 1e-8, worst


def test_masking_zeroes_masked_steps_and_carries_the_state() -> None:
    spec = StackSpec("m", 2, (Masking("mask", 0.5), Recurrent("rnn", "simple_rnn", 3, zero_output_for_mask=False),
                              Dense("head", 1)))
    case = make_stack_case(spec, 1)
    x = case.batch.inputs.copy()
    x[0, 2:] = 0.5
    res = stack.evaluate(spec, case.params, Batch(x, case.batch.targets, case.batch.initial_state))
    out = res["output"]["rnn"]
    np.testing.assert_array_equal(out[0, 2], out[0, 1])  # Keras's default: the last real output repeats
    np.testing.assert_array_equal(res["state"]["rnn/fw"][0], out[0, 1])
    assert np.all(res["gradient"]["inputs"][0, 2:] == 0)


def test_repeated_ids_accumulate_in_the_embedding_gradient() -> None:
    spec = StackSpec("e", 0, (Embedding("emb", 4, 2), Recurrent("rnn", "gru", 2), Dense("head", 1)))
    case = make_stack_case(spec, 2)
    ids = np.array([[1, 1, 1, 1], [1, 2, 2, 1], [3, 1, 2, 1]])
    res = stack.evaluate(spec, case.params, Batch(ids, case.batch.targets, case.batch.initial_state))
    g = res["gradient"]["emb/embeddings"]
    assert np.all(g[0] == 0) and np.all(g[1:] != 0)


@pytest.mark.parametrize("layers, expected", [
    ((Recurrent("r", "lstm", 2), Embedding("e", 3, 2), Dense("d", 1)), "an Embedding must be the first layer"),
    ((Recurrent("r", "lstm", 2, return_sequences=False), Recurrent("s", "gru", 2), Dense("d", 1)),
     "a recurrent layer needs a sequence"),
    ((Recurrent("r", "lstm", 2), Recurrent("r", "gru", 2)), "repeated: ['r']"),
])
def test_impossible_layer_orders_are_refused_by_name(layers: tuple, expected: str) -> None:
    with pytest.raises(ValueError, match=None) as e:
        StackSpec("bad", 2, layers)
    assert expected in str(e.value)


def test_masked_steps_pass_no_gradient_to_the_inputs_without_a_recurrent_layer() -> None:
    """Masking multiplies its inputs by the mask: a masked step's inputs get zero gradient even when no
    recurrent layer (which would also stop it) follows."""
    spec = StackSpec("m", 2, (Masking("mask", 0.0), Dense("dense", 3, "tanh"), Dense("head", 1)))
    case = make_stack_case(spec, 3, steps=5)
    g = stack.evaluate(spec, case.params, case.batch)["gradient"]["inputs"]
    padded = np.all(case.batch.inputs == 0.0, axis=-1)
    assert padded.any() and np.all(g[padded] == 0) and np.all(np.any(g[~padded] != 0, axis=-1)), g


# The porting-bug options (reference/layers.py: gate_activations, bw_order, output_shift) that
# verify/hypotheses.py injects: their hand-written backward against central differences, element by element.
PORTING_BUG_LAYERS = [
    Recurrent("lstm", "lstm", 3, gate_activations=(("i", "hard_sigmoid"), ("f", "tanh"), ("g", "sigmoid"),
                                                   ("o", "hard_sigmoid_keras2"))),
    Recurrent("gru", "gru", 3, gate_activations=(("z", "tanh"), ("r", "hard_sigmoid_keras2"), ("h", "sigmoid"))),
    Recurrent("gru", "gru", 3, reset_after=False, gate_activations=(("r", "tanh"), ("h", "relu"))),
    Recurrent("bi", "lstm", 2, bidirectional=True, bw_order="forward"),
    Recurrent("bi", "gru", 2, bidirectional=True, merge_mode="mul", bw_order="not_realigned"),
    Recurrent("bi", "simple_rnn", 3, bidirectional=True, return_sequences=False, bw_order="input_reversed_twice"),
    Recurrent("bi", "lstm", 2, bidirectional=True, output_shift=1),
    Recurrent("lag", "gru", 3, go_backwards=True, return_sequences=False, output_shift=1),
    Recurrent("tm", "lstm", 2, bidirectional=True, time_major=True),
    Recurrent("tm", "gru", 3, return_sequences=False, time_major=True, output_shift=1),
    Recurrent("first", "lstm", 2, bidirectional=True, return_sequences=False, last_output="first_step"),
    Recurrent("first", "simple_rnn", 3, return_sequences=False, last_output="first_step"),
]


@pytest.mark.parametrize("layer", PORTING_BUG_LAYERS, ids=lambda l: f"{l.name}-{l.cell}-{l.gate_activations or ''}"
                         f"{l.bw_order if l.bidirectional else ''}-shift{l.output_shift}")
@pytest.mark.parametrize("masked", [False, True])
def test_porting_bug_options_match_central_differences(layer: Recurrent, masked: bool) -> None:
    """Every parameter, initial state and (unmasked) input element, with Masking's padding or without."""
    first = (Masking("mask", 0.0),) if masked else ()
    spec = StackSpec("bugs", 2, first + (layer, Dense("head", 2)))
    case = make_stack_case(spec, 6)
    grads = _grads_at(case, stack.evaluate(spec, case.params, case.batch)["gradient"])
    f, point = _loss_at(case), _point(case)
    worst = {}
    for name, value in point.items():
        num = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            for sign in (1, -1):
                moved = dict(point)
                moved[name] = value.copy()
                moved[name][idx] += sign * 1e-6
                num[idx] += sign * f(moved) / 2e-6
        worst[name] = float(np.max(np.abs(num - grads[name])))
    assert max(worst.values()) < 1e-8, {k: v for k, v in worst.items() if v >= 1e-8}


def test_porting_bug_options_change_the_results_and_default_to_none() -> None:
    """Each option moves the outputs (it models a bug), and a layer without them is the layer it always was."""
    plain = Recurrent("bi", "lstm", 2, bidirectional=True)
    assert (plain.gate_activations, plain.bw_order, plain.output_shift, plain.time_major) == ((), "reversed", 0, False)
    spec = StackSpec("plain", 2, (plain, Dense("head", 2)))
    case = make_stack_case(spec, 2)
    base = stack.evaluate(spec, case.params, case.batch)["output"]["bi"]
    for changes in ({"gate_activations": (("o", "tanh"),)}, {"bw_order": "forward"}, {"bw_order": "not_realigned"},
                    {"bw_order": "input_reversed_twice"}, {"output_shift": 1}, {"time_major": True}):
        moved = StackSpec("bug", 2, (replace(plain, **changes), Dense("head", 2)))
        out = stack.evaluate(moved, case.params, case.batch)["output"]["bi"]
        assert np.max(np.abs(out - base)) > 1e-3, changes
    with pytest.raises(ValueError, match="needs a bidirectional layer"):
        Recurrent("r", "lstm", 2, bw_order="forward")
    with pytest.raises(ValueError, match="unknown gru gate"):
        Recurrent("r", "gru", 2, gate_activations=(("o", "tanh"),))


@pytest.mark.parametrize("option", [{"gate_activations": (("o", "tanh"),)}, {"output_shift": 1},
                                    {"time_major": True}])
def test_frameworks_refuse_a_layer_that_models_a_porting_bug(option: dict) -> None:
    """Only the diagnosis sets these options; a framework built without them would verify another model."""
    from reference.layers import check_buildable
    layer = Recurrent("rnn/0", cell="lstm", hidden_size=3, **option)
    with pytest.raises(ValueError, match=f"layer rnn/0: {next(iter(option))}=.* models a porting bug .*; torch cannot build it"):
        check_buildable((layer,), "torch")
    check_buildable((Recurrent("rnn/0", cell="lstm", hidden_size=3),), "torch")


def _dropout_case():
    from reference import dropout
    from reference.layers import Dropout
    spec = StackSpec("d", 2, (Dropout("drop_in", 0.4), Recurrent("lstm", "lstm", 3), Dropout("drop_out", 0.25),
                              Recurrent("last", "simple_rnn", 2, return_sequences=False), Dropout("drop_last", 0.5),
                              Dense("head", 2)))
    case = make_stack_case(spec, 7)
    masks = dropout.draw_dropout_masks(spec, np.random.default_rng(7), 3, 4)
    return spec, case, masks


def test_dropout_applies_its_mask_forward_and_backward_and_is_the_identity_without_one() -> None:
    """x * mask / (1 - rate) with the batch's mask (the gradients match central differences; dropped units get
    none); without masks, and cast to float32 with them, the same batch is the identity and the same masks."""
    spec, case, masks = _dropout_case()
    batch = replace(case.batch, dropout_masks=masks)
    plain = stack.evaluate(spec, case.params, case.batch)
    dropped = stack.evaluate(spec, case.params, batch)
    np.testing.assert_array_equal(dropped["gradient"]["inputs"][masks["drop_in"] == 0], 0.0)
    assert abs(dropped["loss"]["loss"] - plain["loss"]["loss"]) > 1e-3
    x = case.batch.inputs * masks["drop_in"] / 0.6
    no_first = replace(batch, inputs=x, dropout_masks={k: v for k, v in masks.items() if k != "drop_in"})
    np.testing.assert_allclose(stack.evaluate(spec, case.params, no_first)["output"]["lstm"],
                               dropped["output"]["lstm"], rtol=1e-15, atol=1e-15)
    drop_case = replace(case, batch=batch)

    def loss(point: dict) -> float:  # _loss_at's batch, with the masks
        b = replace(batch, inputs=point["inputs"], initial_state={k[6:]: v for k, v in point.items()
                                                                  if k.startswith("state:")})
        return stack.loss_only(spec, {k[6:]: v for k, v in point.items() if k.startswith("param:")}, b)
    check = directional_check(loss, _point(drop_case), _grads_at(drop_case, dropped["gradient"]),
                              np.random.default_rng(3))
    assert check.ok, table(Report("dropout", "float64", 7, ("reference",), {}, (check,), ()))
    low = batch.astype(np.float32)
    assert all(low.dropout_masks[n].dtype == np.float32 and np.array_equal(low.dropout_masks[n], masks[n])
               for n in masks)


def test_a_dropout_mask_of_the_wrong_shape_is_refused_by_name() -> None:
    spec, case, masks = _dropout_case()
    masks["drop_out"] = masks["drop_out"][:, :3]
    with pytest.raises(ValueError, match=r"dropout mask of layer drop_out: expected the shape of its input "
                                         r"\(3, 4, 3\), got \(3, 3, 3\)"):
        stack.evaluate(spec, case.params, replace(case.batch, dropout_masks=masks))
