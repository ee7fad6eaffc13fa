"""The Keras adapters under Keras 2 (tf.keras 2.15, in .venvs/tf215), and the compatibility layer they rest on."""
import os
import subprocess
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import keras_compat, keras_stack
from adapters.tf_import import import_tf
from reference import stack
from reference.spec import Batch, SequenceSpec
from tests.stack_strategies import make_stack_case, stack_specs
from tests.test_keras_stack import _assert_equivalent, _canonical, _keras_consistent, _with_lengths

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TF215 = os.path.join(ROOT, ".venvs", "tf215", "bin", "python")
STACK_ZOO = ("rnn", "lstm", "gru", "gru_reset_before", "bidirectional", "stacked", "bidirectional_stacked_hard")
ARTICLE = ("attention", "seq2seq", "attention_lstm", "bidirectional_classifier")
tf, keras = import_tf()
keras2 = pytest.mark.skipif(keras_compat.major() != 2, reason="needs Keras 2 (run under .venvs/tf215)")


# ------------------------------------------------------------------------------------- under either Keras

def test_variable_names_drop_keras_2s_scopes() -> None:
    class Var:  # Keras 2 scopes a variable's name by its layers; Keras 3 names it alone
        def __init__(self, name: str) -> None:
            self.name = name
    assert keras_compat.variable_name(Var("rnn_0/forward_rnn_0/lstm_cell/kernel:0")) == "kernel"
    assert keras_compat.variable_name(Var("recurrent_kernel")) == "recurrent_kernel"


def test_each_keras_gets_the_hard_sigmoid_it_lacks_as_a_function() -> None:
    """The reference's two hard_sigmoids: one is the installed Keras's own name, the other a registered function
    computing the definition that Keras lacks."""
    z = tf.constant(np.linspace(-4.0, 4.0, 81))
    own = "hard_sigmoid" if keras_compat.major() >= 3 else "hard_sigmoid_keras2"
    other = "hard_sigmoid_keras2" if own == "hard_sigmoid" else "hard_sigmoid"
    assert keras_compat.activation(own) == "hard_sigmoid"
    fn = keras_compat.activation(other)
    assert callable(fn) and keras_compat.activation_name(fn, ("hard_sigmoid",)) == other
    assert keras_compat.activation_name(keras.activations.get("hard_sigmoid"), ("hard_sigmoid",)) == own
    want = np.clip(0.2 * z.numpy() + 0.5, 0, 1) if other == "hard_sigmoid_keras2" else np.clip(z.numpy() + 3, 0, 6) / 6
    np.testing.assert_allclose(fn(z).numpy(), want, rtol=0, atol=1e-15)
    assert list(keras_compat.custom_objects()) == [f"rnn_verify>{fn.__name__}"]


@pytest.mark.skipif(keras_compat.major() == 2 or not os.path.exists(TF215),
                    reason="runs this file under Keras 2 in .venvs/tf215 (benchmarks/version_matrix.py makes it)")
def test_the_keras_2_environment_passes_this_file() -> None:
    probe = subprocess.run([TF215, "-c", "import pytest, hypothesis"], capture_output=True)
    if probe.returncode:
        pytest.skip(".venvs/tf215 has no pytest/hypothesis (pip install pytest hypothesis there)")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    out = subprocess.run([TF215, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                          os.path.relpath(__file__, ROOT)], cwd=ROOT, capture_output=True, text=True, env=env,
                         timeout=1200)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert " passed" in out.stdout and "skipped" in out.stdout  # the Keras 3-only test skips there


# ------------------------------------------------------------------------------------------- Keras 2 only

@keras2
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("model", STACK_ZOO)
def test_every_stack_zoo_model_is_equivalent_under_keras_2(model: str, dtype: str) -> None:
    from verify.cli import main
    assert main(["compare", "--model", model, "--frameworks", "tensorflow", "--dtype", dtype, "--quiet"]) == 0


@keras2
@pytest.mark.parametrize("model", ARTICLE)
def test_article_models_train_and_verify_under_keras_2(model: str) -> None:
    """adapters/keras_seq2seq.py's layers on TensorFlow ops (Keras 2 has no keras.ops): trained step by step and
    verified as under Keras 3."""
    from verify.cli import main
    assert main(["compare", "--model", model, "--frameworks", "tensorflow", "--quiet"]) == 0


@keras2
def test_keras_2_runs_both_hard_sigmoids_as_the_reference_defines_them() -> None:
    """Keras 2 means 0.2x + 0.5 by "hard_sigmoid": the reference's hard_sigmoid (Keras 3's relu6(x + 3) / 6) must
    not be built with that name. Inputs reach past +-2.5, where the two functions differ most."""
    results = {}
    for gate in ("hard_sigmoid", "hard_sigmoid_keras2"):
        spec = stack.from_sequence(SequenceSpec("hs", 2, 4, 2, cell="lstm", recurrent_activation=gate,
                                                bidirectional=True, merge_mode="concat"))
        case = make_stack_case(spec, 5)
        batch = replace(case.batch, inputs=case.batch.inputs * 6.0)
        model = keras_stack.build(spec, case.params, "float64")
        assert keras_stack.describe(model).layers[0].recurrent_activation == gate
        got = keras_stack.run(model, spec, batch, "float64")
        ref = stack.evaluate(spec, case.params, batch)
        for q in ("output", "state", "gradient"):
            for n, v in ref[q].items():
                np.testing.assert_allclose(got[q][n], v, rtol=1e-10, atol=1e-12, err_msg=f"{gate} {q} {n}")
        results[gate] = ref["output"]["prediction"]
    assert np.max(np.abs(results["hard_sigmoid"] - results["hard_sigmoid_keras2"])) > 1e-2  # the test can tell


@keras2
def test_keras_2_user_model_is_described() -> None:
    L = keras.layers
    model = keras.Sequential([keras.Input((6, 3)),
                              L.LSTM(4, recurrent_activation="hard_sigmoid", return_sequences=True),
                              L.Bidirectional(L.GRU(5, reset_after=False)), L.Dense(2, activation="softmax")])
    spec = keras_stack.describe(model)
    lstm, gru, head = spec.layers
    assert (lstm.cell, lstm.recurrent_activation, lstm.return_sequences) == ("lstm", "hard_sigmoid_keras2", True)
    assert (gru.cell, gru.bidirectional, gru.reset_after, gru.return_sequences) == ("gru", True, False, False)
    assert head.activation == "softmax" and spec.loss == "prob_ce"
    params = keras_stack.extract(model, spec)
    assert set(params) == set(stack.param_shapes(spec))
    x = np.random.default_rng(0).uniform(-1, 1, (3, 6, 3)).astype("float32")
    got = keras_stack.run(model, spec, Batch(x, np.array([0, 1, 1])), "float32")
    np.testing.assert_allclose(got["output"]["prediction"], model(x).numpy(), rtol=0, atol=1e-7)


@keras2
@given(spec=stack_specs(), seed=st.integers(0, 2**16))
def test_keras_2_drawn_models_compute_what_the_reference_computes(spec, seed: int) -> None:
    """Masks (lengths, Masking, mask_zero), embeddings, every cell and option: built, read back bit for bit,
    described, and run as the reference in float64."""
    spec = _keras_consistent(spec)
    case = _with_lengths(spec, seed)
    model = keras_stack.build(spec, case.params, "float64")
    back = keras_stack.extract(model, spec)
    assert all(np.array_equal(back[n], case.params[n]) for n in case.params)
    assert keras_stack.describe(model) == _canonical(spec)
    _assert_equivalent(spec, case.params, case.batch, keras_stack.run(model, spec, case.batch, "float64"))
