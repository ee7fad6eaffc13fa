"""The Keras adapter for layer stacks: built and users' models run as the reference computes, weights read back
exactly, users' models described layer by layer, and the Keras mask behaviours it relies on, measured."""
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import keras_stack
from adapters.tf_import import import_tf
from reference import stack
from reference.layers import Dense, Dropout, Embedding, Masking, Recurrent
from reference.spec import Batch, SequenceSpec
from reference.stack import StackSpec
from tests.stack_strategies import make_stack_case, stack_specs
from verify import engine, tolerance
from verify.compare import compare_results, compare_tensor
from verify.report import Check

tf, keras = import_tf()
L = keras.layers


def _checks(spec: StackSpec, params: dict, batch: Batch, results: dict, dtype: str = "float64") -> list[Check]:
    """Every tensor of the reference against ``results`` under the project's policy (float64: 1024 ulp of the
    tensor's largest |value|; gradients: of the model's largest gradient)."""
    ref = stack.evaluate(spec, params, batch)
    scale = max(float(np.max(np.abs(v))) for v in ref["gradient"].values() if v.size)
    checks, allow = [], {}
    for q, tensors in ref.items():
        for n, v in tensors.items():
            if q == "accuracy":
                continue
            allow[q, n] = tolerance.for_tensor(v, dtype, scale=scale if q == "gradient" else None)
            checks.append(compare_tensor("tensorflow", "reference", q, n, results[q][n], v, allow[q, n], dtype,
                                         stack.time_axis(spec, q, n), stack.gate_blocks(spec, n)))
    pred = ref["output"]["prediction"]
    acc = tolerance.for_accuracy(stack.decision_margins(spec, ref, batch), allow["output", "prediction"],
                                 float(np.max(np.abs(pred))))
    checks.append(compare_tensor("tensorflow", "reference", "accuracy", "accuracy", results["accuracy"]["accuracy"],
                                 ref["accuracy"]["accuracy"], acc, dtype))
    assert {(q, n) for q in ref for n in ref[q]} == {(q, n) for q in results for n in results[q]}
    return checks


def _failures(checks: list[Check]) -> str:
    return "\n".join(f"{c.quantity}/{c.name}: max_abs {c.max_abs:.3g} (allowed atol {c.allowed.atol:.3g} + rtol "
                     f"{c.allowed.rtol:.3g} x |ref|; {c.n_bad}/{c.n_total} outside) at {c.where}, first bad step "
                     f"{c.first_bad_step}, gate {c.gate} ({c.allowed.why})"
                     for c in checks if not c.ok)


def _assert_equivalent(spec: StackSpec, params: dict, batch: Batch, results: dict) -> None:
    checks = _checks(spec, params, batch, results)
    assert all(c.ok for c in checks), _failures(checks)


def _keras_sequences(layer: Recurrent) -> bool:
    return layer.return_sequences or (layer.bidirectional and layer.last_output == "last_step")


def _keras_consistent(spec: StackSpec) -> StackSpec:
    """The spec with each bidirectional layer's zero_output_for_mask as Keras forces it (= its layers'
    return_sequences), so that masked batches are not refused."""
    layers = tuple(replace(l, zero_output_for_mask=_keras_sequences(l)) if isinstance(l, Recurrent) and l.bidirectional
                   else l for l in spec.layers)
    return replace(spec, layers=layers)


def _with_lengths(spec: StackSpec, seed: int, steps: int = 5):
    """A drawn case with ``lengths`` (one full sequence, one shorter), the inputs padded past them with the mask
    value (Masking) or id 0 (mask_zero), so that every mask source agrees with the lengths."""
    case = make_stack_case(spec, seed, batch=4, steps=steps)
    rng = np.random.default_rng(seed + 1)
    lengths = rng.integers(1, steps + 1, size=4)
    lengths[0], lengths[1] = steps, int(rng.integers(1, steps))
    pad = np.arange(steps)[None, :] >= lengths[:, None]
    x = case.batch.inputs.copy()
    first = spec.layers[0]
    if isinstance(first, Embedding):
        x = np.where(x == 0, 1, x) if first.mask_zero else x
        x[pad & first.mask_zero] = 0
    elif isinstance(first, Masking):
        x[pad] = first.mask_value
    return replace(case, batch=Batch(x, case.batch.targets, case.batch.initial_state, lengths))


def _canonical(spec: StackSpec, name: str = "keras model") -> StackSpec:
    """What a Keras model of ``spec`` can say about itself: Keras names, no options a layer ignores, the
    zero_output_for_mask Keras forces on Bidirectional layers, no input width for integer ids."""
    layers = []
    for l in spec.layers:
        l = replace(l, name=l.name.replace("/", "_"))
        if isinstance(l, Recurrent):
            if not l.bidirectional:
                l = replace(l, merge_mode="concat", last_output="final")
            else:
                l = replace(l, zero_output_for_mask=_keras_sequences(l),
                            last_output="final" if l.return_sequences else l.last_output)
            if l.cell != "gru":
                l = replace(l, reset_after=True)
            if l.cell == "simple_rnn":
                l = replace(l, recurrent_activation="sigmoid")
        layers.append(l)
    return replace(spec, name=name, layers=tuple(layers), input_size=0 if spec.takes_ids else spec.input_size)


# ----------------------------------------------------------------------------------------- drawn models

@given(spec=stack_specs(), seed=st.integers(0, 2**16))
def test_float64_keras_computes_what_the_reference_computes(spec: StackSpec, seed: int) -> None:
    spec = _keras_consistent(spec)
    case = make_stack_case(spec, seed)  # Masking and mask_zero inputs carry trailing padding
    results = keras_stack.run(keras_stack.build(spec, case.params, "float64"), spec, case.batch, "float64")
    _assert_equivalent(spec, case.params, case.batch, results)


@given(spec=stack_specs(), seed=st.integers(0, 2**16))
def test_float64_masked_batches_with_lengths(spec: StackSpec, seed: int) -> None:
    spec = _keras_consistent(spec)
    case = _with_lengths(spec, seed)
    results = keras_stack.run(keras_stack.build(spec, case.params, "float64"), spec, case.batch, "float64")
    _assert_equivalent(spec, case.params, case.batch, results)


@given(spec=stack_specs(), seed=st.integers(0, 2**16))
def test_built_model_reads_back_bit_for_bit_and_describes_itself(spec: StackSpec, seed: int) -> None:
    case = make_stack_case(spec, seed)
    model = keras_stack.build(spec, case.params, "float64")
    for back in (keras_stack.extract(model, spec), keras_stack.extract(model)):
        differ = [n for n in case.params if not np.array_equal(back[n], case.params[n])]
        assert list(back) == list(case.params) and not differ, differ
    described = keras_stack.describe(model)
    assert described == _canonical(spec)
    # the description names the same weights, in the same order, under the Keras layer names
    by_description = keras_stack.extract(model, described)
    assert len(by_description) == len(case.params)
    assert all(np.array_equal(a, b) for a, b in zip(by_description.values(), case.params.values()))


def test_engine_runs_a_stack_through_the_registry() -> None:
    """The registry's path (``extract(model)`` with no spec) on layer names with "/" (Keras names them with "_")."""
    seq = SequenceSpec("seq", 2, 3, 2, cell="lstm", num_layers=2, bidirectional=True, merge_mode="mul")
    spec = stack.from_sequence(seq)
    case = make_stack_case(spec, 13)
    run = engine.run_framework("tensorflow", spec, case.params, case.batch, "float64")
    assert [l.name for l in keras_stack.describe(keras_stack.build(spec, case.params, "float64")).layers] == \
        ["rnn_0", "rnn_1", "head"]
    checks, _, _ = engine.check_run(spec, case.batch, "float64", run, built_from=case.params)
    assert all(c.ok for c in checks), _failures(checks)


# ----------------------------------------------------------------------------------------- users' models

def test_user_sequential_is_described() -> None:
    model = keras.Sequential([keras.Input((6, 3)), L.LSTM(4, return_sequences=True), L.GRU(5),
                              L.Dense(2, activation="softmax")])
    lstm, gru, dense = (l.name for l in model.layers)
    assert (lstm.startswith("lstm"), gru.startswith("gru"), dense.startswith("dense")) == (True, True, True)
    expected = StackSpec("user.keras", 3, (
        Recurrent(lstm, "lstm", 4, return_sequences=True, zero_output_for_mask=False),  # Keras's default is False
        Recurrent(gru, "gru", 5, reset_after=True, return_sequences=False, zero_output_for_mask=False),
        Dense(dense, 2, "softmax")), loss="prob_ce", accuracy="argmax")
    assert keras_stack.describe(model, "user.keras") == expected
    params = keras_stack.extract(model, expected)
    assert list(params) == list(stack.param_shapes(expected))
    lstm_kernel = model.layers[0].get_weights()[0]
    assert np.array_equal(params[f"{lstm}/fw/kernel"], lstm_kernel.astype(np.float64))
    gru_bias = model.layers[1].get_weights()[2]  # (2, 3H): input row, recurrent row
    assert np.array_equal(params[f"{gru}/fw/recurrent_bias"], gru_bias[1].astype(np.float64))


def _user_model(dtype: str) -> "keras.Model":
    """A user's functional model: Masking -> Bidirectional(GRU reset_after=False, hard_sigmoid gates) ->
    SimpleRNN(relu) -> Dropout -> TimeDistributed(Dense(tanh)), weights drawn per element."""
    x = keras.Input((5, 2), dtype=dtype)
    y = L.Masking(0.0, dtype=dtype)(x)
    y = L.Bidirectional(L.GRU(3, reset_after=False, recurrent_activation="hard_sigmoid", return_sequences=True,
                              dtype=dtype), merge_mode="ave", dtype=dtype, name="bi")(y)
    y = L.SimpleRNN(4, activation="relu", return_sequences=True, dtype=dtype, name="rnn")(y)
    y = L.Dropout(0.25, dtype=dtype)(y)
    y = L.TimeDistributed(L.Dense(2, activation="tanh", dtype=dtype), dtype=dtype, name="td")(y)
    model = keras.Model(x, y)
    rng = np.random.default_rng(7)
    model.set_weights([rng.uniform(-0.7, 0.7, w.shape).astype(dtype) for w in model.get_weights()])
    return model


def _padded_batch(spec: StackSpec, seed: int, holes: bool = False, zero_states: bool = False) -> Batch:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (3, 5, spec.input_size))
    x[1, 3:] = 0.0  # trailing padding
    if holes:
        x[2, 1:3] = 0.0  # masked steps between real ones
    targets = rng.uniform(-1, 1, (3, 5, spec.output_size))
    states = {n: (0.0 if zero_states else 1.0) * rng.uniform(-0.5, 0.5, s)
              for n, s in stack.state_shapes(spec, 3).items()}
    return Batch(x, targets, states)


def test_user_functional_model_with_time_distributed_dense_runs_as_the_reference() -> None:
    model = _user_model("float64")
    spec = keras_stack.describe(model, "user")
    masking, bi, rnn, dropout, td = spec.layers
    assert (type(masking), type(dropout), dropout.rate) == (Masking, Dropout, 0.25)
    assert bi == Recurrent("bi", "gru", 3, recurrent_activation="hard_sigmoid", reset_after=False, bidirectional=True,
                           merge_mode="ave", return_sequences=True, zero_output_for_mask=True)  # forced by Keras
    assert rnn == Recurrent("rnn", "simple_rnn", 4, activation="relu", zero_output_for_mask=False)
    assert td == Dense("td", 2, "tanh") and (spec.loss, spec.accuracy) == ("mse", "abs_tol")
    params = keras_stack.extract(model, spec)
    for holes in (False, True):  # Masking with masked steps between real ones: the state is carried through
        batch = _padded_batch(spec, 3, holes)
        _assert_equivalent(spec, params, batch, keras_stack.run(model, spec, batch, "float64"))
    assert not model.get_layer("bi").return_state and not model.get_layer("bi").forward_layer.return_state


def test_run_computes_what_the_model_itself_computes() -> None:
    """The layers called one by one (initial states given, masks passed) give what ``model(x)`` gives, with
    zero initial states: the adapter runs the user's model, not a re-creation of it."""
    model = _user_model("float64")
    spec = keras_stack.describe(model)
    batch = _padded_batch(spec, 4, holes=True, zero_states=True)
    own = model(tf.constant(batch.inputs)).numpy()
    assert np.array_equal(keras_stack.run(model, spec, batch, "float64")["output"]["prediction"], own)


def _float32_checks(model, spec: StackSpec, batch: Batch) -> list[Check]:
    """The project's float32 policy (64 ulp, or 8 x the reference's own float32 noise floor), the reference
    run on the weights as the model holds them."""
    results = keras_stack.run(model, spec, batch, "float32")
    ref, allow = engine.reference_and_allowances(spec, keras_stack.extract(model, spec), batch, "float32")
    return compare_results("tensorflow", "reference", results, ref, lambda q, n: allow[q, n], "float32",
                           *engine._locators(spec))


@given(spec=stack_specs(), seed=st.integers(0, 2**16))
def test_float32_within_the_policy(spec: StackSpec, seed: int) -> None:
    spec = _keras_consistent(spec)
    case = make_stack_case(spec, seed)
    checks = _float32_checks(keras_stack.build(spec, case.params, "float32"), spec, case.batch)
    assert all(c.ok for c in checks), _failures(checks)


def test_float32_user_model_runs_as_stored() -> None:
    """A user's float32 model is run as it is (user.py compares float32 files without rebuilding them)."""
    model = _user_model("float32")
    spec = keras_stack.describe(model)
    batch = _padded_batch(spec, 5, holes=True)
    results = keras_stack.run(model, spec, batch, "float32")
    assert results["output"]["prediction"].dtype == np.float32 and results["state"]["bi/bw"].dtype == np.float32
    checks = _float32_checks(model, spec, batch)
    assert all(c.ok for c in checks), _failures(checks)


def test_last_step_bidirectional_saves_loads_and_describes(tmp_path) -> None:
    spec = StackSpec("ls", 2, (Recurrent("bi", "lstm", 3, bidirectional=True, return_sequences=False,
                                         last_output="last_step", merge_mode="concat"), Dense("out", 2)))
    case = make_stack_case(spec, 5)
    path = str(tmp_path / "ls.keras")
    keras_stack.build(spec, case.params, "float64").save(path)
    loaded = keras.saving.load_model(path)
    assert keras_stack.describe(loaded, "ls") == spec
    _assert_equivalent(spec, case.params, case.batch, keras_stack.run(loaded, spec, case.batch, "float64"))


def test_keras_final_output_is_not_the_last_step() -> None:
    """Bidirectional(return_sequences=False) merges the backward state after the whole reversed sequence:
    run against the reference's last_step it must fail, against final it passes."""
    final = StackSpec("f", 2, (Recurrent("bi", "gru", 3, bidirectional=True, return_sequences=False), Dense("out", 2)))
    case = make_stack_case(final, 2)
    results = keras_stack.run(keras_stack.build(final, case.params, "float64"), final, case.batch, "float64")
    _assert_equivalent(final, case.params, case.batch, results)
    last_step = replace(final, layers=(replace(final.layers[0], last_output="last_step"), final.layers[1]))
    failing = [c.name for c in _checks(last_step, case.params, case.batch, results) if not c.ok]
    assert "bi" in failing and "prediction" in failing


@pytest.mark.parametrize("make, message", [
    (lambda: L.LSTM(3, return_state=True, name="ls"), "layer LSTM (ls): return_state=True"),
    (lambda: L.GRU(3, stateful=True, name="st"), "layer GRU (st): stateful=True"),
    (lambda: L.SimpleRNN(3, unroll=True, go_backwards=True, name="ur"), "layer SimpleRNN (ur): unroll=True with go_b"),
    (lambda: L.LayerNormalization(name="ln"), "unsupported layer LayerNormalization (ln)"),
    (lambda: L.SimpleRNN(3, activation="elu", name="el"), "layer SimpleRNN (el): activation 'elu' is not one of"),
    (lambda: L.Dense(3, activation="gelu", name="ge"), "layer Dense (ge): activation 'gelu'"),
    (lambda: L.Bidirectional(L.LSTM(3), backward_layer=L.LSTM(3, go_backwards=True, activation="relu"), name="bd"),
     "layer Bidirectional (bd): backward layer lstm"),
    (lambda: L.Bidirectional(L.LSTM(3), merge_mode=None, name="mn"), "layer Bidirectional (mn): merge_mode=None"),
])
def test_what_cannot_be_described_is_named(make, message: str) -> None:
    if "(ls)" in message:  # a layer returning states does not fit a Sequential: a functional model outputs them
        x = keras.Input((4, 2))
        model = keras.Model(x, make()(x)[0])
    elif "(st)" in message:
        model = keras.Sequential([keras.Input((4, 2), batch_size=3), make()])
    else:
        model = keras.Sequential([keras.Input((4, 2)), make()])
    with pytest.raises(ValueError) as e:
        keras_stack.describe(model)
    assert message in str(e.value) and "\n" not in str(e.value), str(e.value)


def test_branches_and_initial_state_inputs_are_not_a_stack() -> None:
    x, h = keras.Input((4, 2)), keras.Input((3,))
    with pytest.raises(ValueError, match="expected one input and one output .* found 2 inputs"):
        keras_stack.describe(keras.Model([x, h], L.GRU(3, name="g")(x, initial_state=h)))
    h = L.Dense(3, name="h0")(L.GlobalAveragePooling1D()(x))  # an initial state computed from the input
    with pytest.raises(ValueError, match=r"layer GRU \(g2\) is called on 1 tensor\(s\) and initial_state"):
        keras_stack.describe(keras.Model(x, L.GRU(3, name="g2")(x, initial_state=h)))
    a = L.Dense(2, name="a")(x)
    with pytest.raises(ValueError, match=r"layer Add \(add\) is called on 2 tensor\(s\);"):
        keras_stack.describe(keras.Model(x, L.Add(name="add")([a, L.Dense(2, name="b")(x)])))


def test_unroll_forward_is_described_and_runs_as_the_reference() -> None:
    model = keras.Sequential([keras.Input((5, 2), dtype="float64"), L.Masking(dtype="float64"),
                              L.SimpleRNN(3, unroll=True, return_sequences=True, zero_output_for_mask=True,
                                          dtype="float64"), L.Dense(2, dtype="float64")])
    spec = keras_stack.describe(model)
    batch = _padded_batch(spec, 9, holes=True)
    _assert_equivalent(spec, keras_stack.extract(model, spec), batch, keras_stack.run(model, spec, batch, "float64"))


def test_supports_names_what_keras_cannot_hold() -> None:
    peep = StackSpec("p", 2, (Recurrent("l", "lstm", 3, use_peepholes=True), Dense("d", 1)))
    assert "peepholes" in keras_stack.supports(peep)
    bi = Recurrent("bi", "gru", 3, bidirectional=True, return_sequences=True, zero_output_for_mask=False)
    plain = StackSpec("b", 2, (bi, Dense("d", 1)))
    assert keras_stack.supports(plain) is None
    assert "forces zero_output_for_mask" in keras_stack.supports(plain, masked=True)
    case = _with_lengths(plain, 1)
    with pytest.raises(ValueError, match="forces zero_output_for_mask"):
        keras_stack.run(keras_stack.build(plain, case.params, "float64"), plain, case.batch, "float64")
    # a Masking layer is a mask source of its own; a layer returning one vector per sequence ends the mask
    assert "layer bi" in keras_stack.supports(replace(plain, layers=(Masking("m"),) + plain.layers))
    ends = StackSpec("e", 2, (Masking("m"), Recurrent("top", "lstm", 2, return_sequences=False), Dense("d", 2)))
    assert keras_stack.supports(ends, masked=True) is None


# ----------------------------------------------------------------------------- Keras behaviours relied on

def test_keras_rnn_called_with_initial_state_ignores_the_input_mask() -> None:
    """Why ``run`` passes ``mask=`` to each recurrent layer: Keras 3.15 fills ``mask`` from the input only
    for a call with one tensor argument, so ``layer(x, initial_state=s)`` runs unmasked."""
    from keras.src.backend import get_keras_mask
    x = np.random.default_rng(0).uniform(-1, 1, (2, 4, 2))
    x[1, 2:] = 0.0
    masked = L.Masking(dtype="float64")(tf.constant(x))
    rnn = L.SimpleRNN(3, return_sequences=True, zero_output_for_mask=True, dtype="float64")
    s0 = [tf.zeros((2, 3), "float64")]
    implicit = rnn(masked, initial_state=s0).numpy()
    explicit = rnn(masked, initial_state=s0, mask=get_keras_mask(masked)).numpy()
    assert np.all(explicit[1, 2:] == 0.0) and np.all(implicit[1, 2:] != 0.0)
    assert np.array_equal(rnn(masked).numpy(), explicit)  # without initial_state the mask is picked up


def test_keras_unrolled_go_backwards_zeroes_the_wrong_steps() -> None:
    """Why describe refuses unroll=True with go_backwards: the unrolled loop zeroes masked outputs with the mask
    in input order, while its outputs are in processing order."""
    x = tf.constant(np.random.default_rng(1).uniform(-1, 1, (2, 5, 2)))
    mask = tf.constant([[True] * 5, [True] * 3 + [False] * 2])
    outs = []
    for unroll in (False, True):
        rnn = L.SimpleRNN(2, unroll=unroll, go_backwards=True, return_sequences=True, zero_output_for_mask=True,
                          dtype="float64", kernel_initializer="ones", recurrent_initializer="ones")
        outs.append(rnn(x, mask=mask).numpy())
    zero_steps = [np.all(o[1] == 0.0, axis=-1).tolist() for o in outs]
    # processing order of sequence 1 (length 3): input steps 4, 3 (padding), then 2, 1, 0
    assert zero_steps == [[True, True, False, False, False], [True, True, False, True, True]]


def test_keras_embedding_without_mask_zero_drops_a_mask() -> None:
    """Why ``run`` attaches the batch's lengths again after such an Embedding (the reference keeps them)."""
    from keras.src.backend import get_keras_mask, set_keras_mask
    ids = tf.constant([[1, 2, 3], [1, 2, 3]])
    set_keras_mask(ids, tf.constant([[True] * 3, [True, False, False]]))
    with pytest.warns(UserWarning, match="does not support masking"):
        out = L.Embedding(4, 2)(ids)
    assert get_keras_mask(out) is None


@pytest.mark.parametrize("zero_output, go_backwards", [(True, False), (False, False), (True, True)])
def test_keras_last_output_of_a_padded_sequence(zero_output: bool, go_backwards: bool) -> None:
    """return_sequences=False on a masked batch: Keras returns the last output its loop wrote. With
    zero_output_for_mask=True that is zero for a sequence with trailing padding (its last step is masked),
    with False the last real output; with go_backwards the last step processed is input step 0 (real).
    The reference agrees in each case."""
    spec = StackSpec("last", 2, (Masking("m"), Recurrent("r", "lstm", 3, return_sequences=False,
                                                         zero_output_for_mask=zero_output, go_backwards=go_backwards),
                                 Dense("d", 2)))
    case = make_stack_case(spec, 11, steps=5)  # sequences 1 and 2 end in padded steps, sequence 0 does not
    results = keras_stack.run(keras_stack.build(spec, case.params, "float64"), spec, case.batch, "float64")
    zero_rows = np.all(results["output"]["r"] == 0.0, axis=-1).tolist()
    assert zero_rows == [False] + [zero_output and not go_backwards] * 2
    _assert_equivalent(spec, case.params, case.batch, results)


def test_dropout_masks_run_as_the_reference_and_keep_the_keras_mask() -> None:
    """The batch's keep masks after an Embedding(mask_zero) and after a recurrent layer: every tensor within the
    float64 policy. The product is a new tensor, so the Keras mask is attached again: without it the second LSTM
    would run the padded steps (caught here by the final states of sequences 1 and 2)."""
    from reference.dropout import draw_dropout_masks
    spec = StackSpec("d", 0, (Embedding("emb", 6, 3, mask_zero=True), Dropout("drop_emb", 0.3),
                              Recurrent("lstm", "lstm", 4), Dropout("drop_lstm", 0.5), Recurrent("last", "gru", 3),
                              Dense("head", 2)))
    case = make_stack_case(spec, 5)
    batch = replace(case.batch, dropout_masks=draw_dropout_masks(spec, np.random.default_rng(5), 3, 4))
    results = keras_stack.run(keras_stack.build(spec, case.params, "float64"), spec, batch, "float64")
    bad = [c for c in _checks(spec, case.params, batch, results) if not c.ok]
    assert not bad, bad
