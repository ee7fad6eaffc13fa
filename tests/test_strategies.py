"""verify.strategies as a user writes a property with it: draw a case, run the reference, check what it promises."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reference import stack
from reference.layers import Embedding, Masking, Recurrent
from reference.layout import GATES, GATE_STACKED, initial_state_gradient_name
from reference.spec import SequenceSpec
from verify import strategies as vs


def _gate_blocks(layer: Recurrent, value: np.ndarray) -> list[np.ndarray]:
    """The gate blocks of a gate-stacked tensor, written out here rather than taken from the code under test."""
    n = len(GATES[layer.cell])
    width = value.shape[-1] // n
    return [value[..., i * width:(i + 1) * width] for i in range(n)]


def _promises(case: vs.StackCase) -> list[str]:
    """Every broken promise of a drawn case, in words (empty when all hold)."""
    broken = []
    spec, params, batch = case.spec, case.params, case.batch
    if set(params) != set(stack.param_shapes(spec)):
        broken.append(f"parameters {sorted(params)} != {sorted(stack.param_shapes(spec))}")
    for name, value in params.items():
        if value.dtype != np.float64 or np.any(value == 0):
            broken.append(f"{name}: dtype {value.dtype}, {int(np.sum(value == 0))} zero elements")
    for layer in (l for l in spec.recurrent_layers if l.cell != "simple_rnn"):
        for name, value in params.items():
            if name.startswith(layer.name + "/") and name.rsplit("/", 1)[-1] in GATE_STACKED:
                blocks = _gate_blocks(layer, value)
                same = [(i, j) for i in range(len(blocks)) for j in range(i + 1, len(blocks))
                        if np.array_equal(blocks[i], blocks[j])]
                if same:
                    broken.append(f"{name}: gate blocks {same} are equal")
    b, t = batch.inputs.shape[:2]
    if b < 3 or t < 2:
        broken.append(f"batch {b}, steps {t}: expected batch >= 3 and steps >= 2")
    expected_states = stack.state_shapes(spec, b)
    if {k: v.shape for k, v in batch.initial_state.items()} != expected_states:
        broken.append(f"initial states {sorted(batch.initial_state)} != {expected_states}")
    for name, value in batch.initial_state.items():
        if np.any(value == 0):
            broken.append(f"initial state {name} has {int(np.sum(value == 0))} zero elements")
    first = spec.layers[0]
    padded = isinstance(first, Masking) or (isinstance(first, Embedding) and first.mask_zero)
    if padded or batch.lengths is not None:
        if t < 3:
            broken.append(f"padded batch of {t} steps: a sequence would have no real step")
    if batch.lengths is not None and (batch.lengths[0] != t or min(batch.lengths) < 1 or max(batch.lengths) > t):
        broken.append(f"lengths {batch.lengths} for {t} steps")
    return broken


@given(case=vs.cases(lengths=None))
def test_a_drawn_case_keeps_its_promises_and_the_reference_runs_it(case: vs.StackCase) -> None:
    assert not _promises(case), (_promises(case), case)
    results = stack.evaluate(case.spec, case.params, case.batch)
    grads = results["gradient"]
    b, t = case.batch.inputs.shape[:2]
    # a gradient for every parameter and every initial state, of its shape, and a prediction of the model's shape
    wrong = {k: (grads[k].shape, v.shape) for k, v in case.params.items() if grads[k].shape != v.shape}
    wrong.update({k: (grads[initial_state_gradient_name(k)].shape, v.shape) for k, v in case.batch.initial_state.items()
                  if grads[initial_state_gradient_name(k)].shape != v.shape})
    assert not wrong, (wrong, case)
    expected = (b, t, case.spec.output_size) if case.spec.return_sequences else (b, case.spec.output_size)
    assert results["output"]["prediction"].shape == expected, (results["output"]["prediction"].shape, expected, case)
    assert all(np.all(np.isfinite(g)) for g in grads.values()), case


@given(data=st.data())
def test_params_and_batches_alone_keep_their_promises(data: st.DataObject) -> None:
    spec = data.draw(vs.stack_specs(cells=("lstm", "gru"), max_recurrent=2, inputs=("plain",), masks=False))
    case = vs.StackCase(spec, data.draw(vs.params(spec)), data.draw(vs.batches(spec, lengths=True, max_steps=4)))
    assert not _promises(case), (_promises(case), case)
    assert case.batch.lengths is not None and case.batch.inputs.shape[1] <= 4, case
    assert {l.cell for l in spec.recurrent_layers} <= {"lstm", "gru"} and len(spec.recurrent_layers) <= 2, spec
    assert not isinstance(spec.layers[0], (Embedding, Masking)), spec


@settings(max_examples=40)
@given(spec=vs.stack_specs(bidirectional=False, go_backwards=False, dropout=False, dense=False, heads=("linear",),
                           activations=("relu",), gate_activations=("hard_sigmoid",)))
def test_stack_specs_honours_its_options(spec) -> None:
    rec = spec.recurrent_layers
    assert not any(l.bidirectional or l.go_backwards for l in rec), spec
    assert all(l.activation == "relu" and l.recurrent_activation == "hard_sigmoid" for l in rec), spec
    assert [l.name for l in spec.layers if l.kind == "Dense"] == ["head"] and spec.layers[-1].activation == "linear"
    assert not any(l.kind == "Dropout" for l in spec.layers), spec


@settings(max_examples=5)
@given(case=vs.cases(st.just(SequenceSpec("seq", 2, 3, 2, cell="lstm", num_layers=2))))
def test_a_sequence_spec_is_taken_as_its_stack(case: vs.StackCase) -> None:
    assert isinstance(case.spec, stack.StackSpec) and set(case.params) == set(stack.param_shapes(case.spec)), case


@pytest.mark.parametrize("make, message", [
    (lambda: vs.batches(vs.make_case(SequenceSpec("s", 1, 2, 2), 0).spec, min_batch=2), "min_batch"),
    (lambda: vs.batches(vs.make_case(SequenceSpec("s", 1, 2, 2), 0).spec, min_steps=1), "min_steps"),
    (lambda: vs.batches(vs.make_case(SequenceSpec("s", 1, 2, 2), 0).spec, max_steps=2, lengths=True), "max_steps"),
    (lambda: vs.stack_specs(cells=("lstm", "transformer")), "transformer"),
    (lambda: vs.stack_specs(inputs=("masking",), masks=False), "masks=False"),
    (lambda: vs.params(SequenceSpec("s", 1, 2, 2), scale=0.0), "scale"),
    (lambda: vs.make_case(vs.make_case(SequenceSpec("s", 1, 2, 2), 0).spec, 0, steps=2, lengths=True), "steps >= 3"),
])
def test_impossible_requests_fail_when_the_strategy_is_made(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()
