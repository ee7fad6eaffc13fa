"""The Keras adapters' compiled ``run``: the eager run's numbers (but for a loop's gradient sums), one trace each."""
import gc
import os
import weakref
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters import keras_compat, keras_seq2seq, keras_stack
from adapters.tf_import import import_tf
from reference import stack
from reference.dropout import draw_dropout_masks
from reference.layers import Dense, Dropout, Embedding, Recurrent
from reference.spec import Batch, SequenceSpec
from reference.stack import StackSpec
from tests.seq2seq_cases import small_case, small_spec
from tests.stack_strategies import StackCase, make_stack_case, stack_specs
from tests.test_keras_stack import _assert_equivalent, _keras_consistent, _with_lengths

tf, keras = import_tf()


def _eager(run: Callable[..., dict], *args: Any) -> dict:
    """``run`` with every tf.function executed eagerly: what the adapter computed before it was compiled."""
    tf.config.run_functions_eagerly(True)
    try:
        return run(*args)
    finally:
        tf.config.run_functions_eagerly(False)


def _assert_same(compiled: dict, eager: dict, gradient_ulp: int = 0, dtype: str = "float64") -> None:
    """The same tensors, every one bit for bit, except the gradients when ``gradient_ulp``: within that many ulp
    (of ``dtype``, the run's) of the tensor's largest |value| (a while loop sums a weight's gradient over the steps
    in its own order; the adapter hands weights' gradients over as float64)."""
    assert {q: list(v) for q, v in compiled.items()} == {q: list(v) for q, v in eager.items()}
    differ = []
    for q in eager:
        for n, want in eager[q].items():
            got, want = compiled[q][n], np.asarray(want)
            assert got.dtype == want.dtype, f"{q}/{n}: {got.dtype}, eager {want.dtype}"
            if q == "gradient" and gradient_ulp and want.size:
                ulp = np.finfo(dtype).eps * float(np.max(np.abs(want)))
                same = bool(np.all(np.abs(got - want) <= gradient_ulp * ulp))
            else:
                same = np.array_equal(got, want)
            if not same:
                differ.append(f"{q}/{n}")
    assert not differ, differ


def _with_dropout_masks(spec: StackSpec, case: StackCase) -> Batch:
    b = case.batch
    masks = draw_dropout_masks(spec, np.random.default_rng(0), *b.inputs.shape[:2])
    return replace(b, dropout_masks=masks or None)


@settings(**({} if os.environ.get("VERIFY_EXAMPLES") else {"max_examples": 8}))  # two traces per example
@given(spec=stack_specs(), seed=st.integers(0, 2**16), dtype=st.sampled_from(["float32", "float64"]),
       lengths=st.booleans())
def test_compiled_stack_run_is_the_eager_run(spec: StackSpec, seed: int, dtype: str, lengths: bool) -> None:
    """Every tensor ``run`` returns, compiled, is the eager run's: outputs of every recurrent layer, final states,
    loss and accuracy bit for bit, gradients within 64 ulp (masks, dropout masks, embeddings, hard sigmoids
    included)."""
    spec = _keras_consistent(spec)
    case = _with_lengths(spec, seed) if lengths else make_stack_case(spec, seed)
    batch = _with_dropout_masks(spec, case)
    model = keras_stack.build(spec, case.params, dtype)
    _assert_same(keras_stack.run(model, spec, batch, dtype), _eager(keras_stack.run, model, spec, batch, dtype),
                 gradient_ulp=64, dtype=dtype)


def _lstm(dtype: str = "float64") -> tuple[StackSpec, StackCase, Any]:
    spec = stack.from_sequence(SequenceSpec("lstm", 3, 4, 2, cell="lstm", loss="softmax_ce", accuracy="argmax"))
    case = make_stack_case(spec, 5, batch=3, steps=4)
    return spec, case, keras_stack.build(spec, case.params, dtype)


def test_a_second_run_does_not_trace_again_and_other_shapes_share_one_trace() -> None:
    spec, case, model = _lstm()
    assert keras_stack.tracing_count(model, spec, "float64") == 0
    first = keras_stack.run(model, spec, case.batch, "float64")
    assert keras_stack.tracing_count(model, spec, "float64") == 1
    _assert_same(keras_stack.run(model, spec, case.batch, "float64"), first)
    assert keras_stack.tracing_count(model, spec, "float64") == 1
    for batch, steps in ((5, 7), (2, 3), (6, 9)):  # reduce_retracing: the second shape traces without sizes
        other = make_stack_case(spec, batch + steps, batch=batch, steps=steps).batch
        _assert_equivalent(spec, case.params, other, keras_stack.run(model, spec, other, "float64"))
    assert keras_stack.tracing_count(model, spec, "float64") == 2


def test_a_loss_that_reads_the_batch_size_runs_on_a_trace_without_sizes() -> None:
    """softmax_ce_steps divides by the batch size, which the trace that serves every shape does not know (under
    Keras 2, adapters/keras_compat.py's ``shape`` reads it at run time)."""
    spec = StackSpec("ids", 0, (Embedding("emb", 7, 3), Recurrent("rnn", "lstm", 4, return_sequences=True),
                                Dense("out", 7)), "softmax_ce_steps", "argmax")
    params = make_stack_case(spec, 1).params
    model = keras_stack.build(spec, params, "float64")
    for b, steps in ((3, 4), (5, 6), (4, 3)):
        rng = np.random.default_rng(b)
        states = {n: rng.uniform(-0.5, 0.5, shape) for n, shape in stack.state_shapes(spec, b).items()}
        batch = Batch(rng.integers(0, 7, (b, steps)), rng.integers(0, 7, (b, steps)), states)
        _assert_equivalent(spec, params, batch, keras_stack.run(model, spec, batch, "float64"))
    assert keras_stack.tracing_count(model, spec, "float64") == 2


def test_a_run_after_training_reads_the_trained_weights() -> None:
    """The traced function reads the model's variables when called, not the values they had when traced."""
    spec, case, model = _lstm()
    keras_stack.run(model, spec, case.batch, "float64")
    keras_stack.train(model, spec, [case.batch], 0.5, "float64")
    params = keras_stack.extract(model, spec)
    kernel = f"{spec.layers[0].name}/fw/kernel"
    assert not np.array_equal(params[kernel], case.params[kernel])
    _assert_equivalent(spec, params, case.batch, keras_stack.run(model, spec, case.batch, "float64"))
    assert keras_stack.tracing_count(model, spec, "float64") == 1


def test_the_traced_function_dies_with_its_model() -> None:
    spec, case, model = _lstm()
    keras_stack.run(model, spec, case.batch, "float64")
    dead = weakref.ref(model)
    del model
    gc.collect()
    assert dead() is None


def test_a_run_model_still_saves_and_loads(tmp_path: Path) -> None:
    """What ``run`` keeps on the model is no part of what Keras saves."""
    spec = StackSpec("s", 2, (Recurrent("rnn", "gru", 3, return_sequences=True), Dropout("drop", 0.5),
                              Dense("out", 2)))
    case = make_stack_case(spec, 3)
    model = keras_stack.build(spec, case.params, "float64")
    before = keras_stack.run(model, spec, case.batch, "float64")
    path = str(tmp_path / "m.keras" if keras_compat.major() >= 3 else tmp_path / "m.h5")
    model.save(path)
    loaded = keras.models.load_model(path, custom_objects=keras_stack.custom_objects())
    _assert_same(keras_stack.run(loaded, keras_stack.describe(loaded, "s"), case.batch, "float64"), before)


def test_compiled_seq2seq_run_is_the_eager_run_and_traces_once() -> None:
    for kind, cell, decoding in (("attention", "lstm", "greedy"), ("seq2seq", "simple_rnn", "teacher"),
                                 ("bidirectional", "simple_rnn", "greedy")):
        spec = small_spec(kind, decoding, cell=cell)
        params, batch = small_case(spec, seed=4)
        model = keras_seq2seq.build(spec, params, "float64")
        compiled = keras_seq2seq.run(model, spec, batch, "float64")
        _assert_same(keras_seq2seq.run(model, spec, batch, "float64"), compiled)
        assert keras_seq2seq.tracing_count(model, spec, "float64") == 1
        _assert_same(compiled, _eager(keras_seq2seq.run, model, spec, batch, "float64"))
