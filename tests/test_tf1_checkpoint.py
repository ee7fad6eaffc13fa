"""TF1 Saver checkpoints made as users make them (real TF1 cells, Saver): recognised, reproduced by the reference."""
from __future__ import annotations

import os
import shutil
import warnings
from dataclasses import dataclass, replace
from typing import Any, Callable

import numpy as np
import pytest

from adapters import tf1_checkpoint
from reference import stack
from reference.layers import Dense, Recurrent
from reference.spec import Batch
from reference.stack import StackSpec

pytest.importorskip("tensorflow")

B, T, D, O = 3, 4, 3, 2
# Both sides compute in float64 and differ only in summation order and in the libm/Eigen tanh, exp and
# sigmoid (a few ulp each), about 10 operations deep per step over 4 steps: measured at most 4.4e-16
# over these models. 1e-12 of the largest value leaves three orders of magnitude, while a layout slip
# moves the outputs by ~0.1 (measured: f and g bias blocks swapped 0.30, GRU z and r swapped 0.32, fw
# for bw 0.24; test_wrong_forget_bias_is_caught shows this check failing).
RTOL_OF_SCALE = 1e-12


def _tf() -> tuple[Any, Any]:
    from adapters.tf_import import import_tf
    tf = import_tf()[0]
    tf.get_logger().setLevel("ERROR")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # tf.compat.v1.nn.rnn_cell.* refuses under Keras 3; TF still bundles the cells here
        from tensorflow.python.keras.layers.legacy_rnn import rnn_cell_impl
    return tf, rnn_cell_impl


@dataclass
class Made:
    """A checkpoint a user wrote, and what its graph computed on ``inputs`` in that session."""

    prefix: str
    inputs: np.ndarray
    computed: dict[str, np.ndarray]  # "prediction", "hidden" (top recurrent output) and canonical state names
    names: list[str]                 # every variable the graph created


def _head(tf: Any, x: Any, kernel: str, bias: str) -> Any:
    """A dense layer on the last axis; tf.compat.v1.layers.dense is "not available with Keras 3", so its
    variables are made by hand under the names it gives them (or a user's own names)."""
    v1 = tf.compat.v1
    k = v1.get_variable(kernel, (x.shape[-1], O), tf.float64)
    b = v1.get_variable(bias, (O,), tf.float64)
    return tf.tensordot(x, k, axes=1) + b


def _lstm_state(s: Any, pre: str) -> dict[str, Any]:
    return {pre: s.h, pre + "/c": s.c}  # LSTMStateTuple(c, h)


def _basic_rnn(tf, r, x):
    outs, s = tf.compat.v1.nn.dynamic_rnn(r.BasicRNNCell(4, activation=tf.nn.relu, dtype=tf.float64), x,
                                          dtype=tf.float64)
    return _head(tf, outs, "dense/kernel", "dense/bias"), outs, {"rnn/0/fw": s}


def _basic_lstm_adam(tf, r, x):
    v1 = tf.compat.v1
    outs, s = v1.nn.dynamic_rnn(r.BasicLSTMCell(4, dtype=tf.float64), x, dtype=tf.float64)
    y = _head(tf, outs, "dense/kernel", "dense/bias")
    # a trained model's checkpoint carries optimiser slots and a step counter
    step = v1.train.get_or_create_global_step()
    v1.train.AdamOptimizer(0.01).minimize(tf.reduce_mean(tf.square(y)), global_step=step)
    return y, outs, _lstm_state(s, "rnn/0/fw")


def _lstm_peep_proj(tf, r, x):
    v1 = tf.compat.v1
    with v1.variable_scope("encoder"):
        cell = r.LSTMCell(4, use_peepholes=True, num_proj=2, forget_bias=0.5, dtype=tf.float64)
        outs, s = v1.nn.dynamic_rnn(cell, x, dtype=tf.float64)
    return _head(tf, outs, "softmax_w", "softmax_b"), outs, _lstm_state(s, "rnn/0/fw")


def _gru(tf, r, x):
    outs, s = tf.compat.v1.nn.dynamic_rnn(r.GRUCell(4, dtype=tf.float64), x, dtype=tf.float64)
    return _head(tf, outs, "W", "b"), outs, {"rnn/0/fw": s}


def _multi_lstm(tf, r, x):
    cells = r.MultiRNNCell([r.BasicLSTMCell(4, dtype=tf.float64), r.BasicLSTMCell(3, dtype=tf.float64)])
    outs, (s0, s1) = tf.compat.v1.nn.dynamic_rnn(cells, x, dtype=tf.float64)
    return (_head(tf, outs, "dense/kernel", "dense/bias"), outs,
            _lstm_state(s0, "rnn/0/fw") | _lstm_state(s1, "rnn/1/fw"))


def _bidirectional_lstm(tf, r, x):
    """return_sequences=False: the head sees static_bidirectional_rnn(...)[0][-1], whose backward half
    has seen only the last input."""
    outs, s_fw, s_bw = tf.compat.v1.nn.static_bidirectional_rnn(
        r.BasicLSTMCell(4, dtype=tf.float64), r.BasicLSTMCell(4, dtype=tf.float64), tf.unstack(x, axis=1),
        dtype=tf.float64)
    return (_head(tf, outs[-1], "dense/kernel", "dense/bias"), outs[-1],
            _lstm_state(s_fw, "rnn/0/fw") | _lstm_state(s_bw, "rnn/0/bw"))


def _stacked_bidirectional_gru(tf, r, x):
    """contrib's stack_bidirectional_rnn (gone from TF 2.x), its scoping reproduced: each layer is
    static_bidirectional_rnn under stack_bidirectional_rnn/cell_N, fed the concatenated layer below."""
    v1, seq, finals = tf.compat.v1, tf.unstack(x, axis=1), {}
    with v1.variable_scope("stack_bidirectional_rnn"):
        for k, hidden in enumerate((3, 2)):
            with v1.variable_scope(f"cell_{k}") as scope:
                seq, s_fw, s_bw = v1.nn.static_bidirectional_rnn(
                    r.GRUCell(hidden, dtype=tf.float64), r.GRUCell(hidden, dtype=tf.float64), seq, dtype=tf.float64,
                    scope=scope)
            finals |= {f"rnn/{k}/fw": s_fw, f"rnn/{k}/bw": s_bw}
    outs = tf.stack(seq, axis=1)
    return _head(tf, outs, "dense/kernel", "dense/bias"), outs, finals


# kind -> (graph builder, describe's arguments for what the checkpoint does not store, expected layers)
MODELS: dict[str, tuple[Callable, dict, tuple]] = {
    "BasicRNNCell": (_basic_rnn, {"activation": "relu"},
                     (Recurrent("rnn/0", "simple_rnn", 4, activation="relu"), Dense("head", O))),
    "BasicLSTMCell": (_basic_lstm_adam, {"forget_bias": 1.0},
                      (Recurrent("rnn/0", "lstm", 4, forget_bias=1.0), Dense("head", O))),
    "LSTMCell_peepholes_proj": (_lstm_peep_proj, {"forget_bias": 0.5},
                                (Recurrent("rnn/0", "lstm", 4, forget_bias=0.5, use_peepholes=True, proj_size=2),
                                 Dense("head", O))),
    "GRUCell": (_gru, {}, (Recurrent("rnn/0", "gru", 4, reset_after=False), Dense("head", O))),
    "MultiRNNCell_2_lstm": (_multi_lstm, {"forget_bias": 1.0},
                            (Recurrent("rnn/0", "lstm", 4, forget_bias=1.0),
                             Recurrent("rnn/1", "lstm", 3, forget_bias=1.0),
                             Dense("head", O))),
    "bidirectional_lstm": (_bidirectional_lstm, {"forget_bias": 1.0, "return_sequences": False},
                           (Recurrent("rnn/0", "lstm", 4, forget_bias=1.0, bidirectional=True, return_sequences=False,
                                      last_output="last_step"), Dense("head", O))),
    "stack_bidirectional_gru": (_stacked_bidirectional_gru, {},
                                tuple(Recurrent(f"rnn/{k}", "gru", h, reset_after=False, bidirectional=True,
                                                last_output="last_step") for k, h in enumerate((3, 2)))
                                + (Dense("head", O),)),
}


def _make(directory: str, kind: str, seed: int = 0) -> Made:
    """Build the model from TF1 cells in a float64 graph, give every variable distinct random values
    (per gate and per element, biases non-zero), run it, and save it with tf.compat.v1.train.Saver."""
    tf, r = _tf()
    v1 = tf.compat.v1
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=(B, T, D))
    graph = tf.Graph()
    with graph.as_default(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x = v1.placeholder(tf.float64, (None, T, D))
        y, hidden, finals = MODELS[kind][0](tf, r, x)
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            for var in v1.trainable_variables():  # TF1 zero/constant bias initialisers would hide layout bugs
                var.load(rng.normal(scale=0.6, size=var.shape.as_list()), session)
            computed = session.run({"prediction": y, "hidden": hidden, **finals}, {x: inputs})
            prefix = v1.train.Saver().save(session, os.path.join(directory, "model.ckpt"))
        names = [v.op.name for v in v1.global_variables()]
    return Made(prefix, inputs, computed, names)


def _assert_close(got: np.ndarray, want: np.ndarray, what: str) -> float:
    scale = max(1.0, float(np.max(np.abs(want))))
    err = float(np.max(np.abs(got - want)))
    assert got.shape == want.shape, (what, got.shape, want.shape)
    assert err <= RTOL_OF_SCALE * scale, f"{what}: max |reference - TF1| = {err:.3g} > {RTOL_OF_SCALE:g} x {scale:.3g}"
    return err


@pytest.mark.parametrize("kind", list(MODELS))
def test_reference_reproduces_the_tf1_graph(kind, tmp_path):
    """describe() recognises the model, and the float64 reference on the described spec and params gives
    what the TF1 graph computed in the session that saved it: outputs, top sequence, final states."""
    made = _make(str(tmp_path), kind)
    _, options, layers = MODELS[kind]
    spec, params, sources = tf1_checkpoint.describe(tf1_checkpoint.read_checkpoint(made.prefix), **options)
    assert spec.layers == layers
    assert spec.input_size == D
    assert sorted(sources) == sorted(params) == sorted(stack.param_shapes(spec))
    results = stack.evaluate(spec, params, Batch(made.inputs, np.zeros_like(made.computed["prediction"])))
    _assert_close(results["output"]["prediction"], made.computed["prediction"], "prediction")
    _assert_close(results["output"][spec.recurrent_layers[-1].name], made.computed["hidden"], "top recurrent output")
    finals = {n: v for n, v in made.computed.items() if n.startswith("rnn/")}
    assert sorted(finals) == sorted(results["state"])
    for name, want in finals.items():
        _assert_close(results["state"][name], want, f"final state {name}")


def test_optimiser_state_is_ignored_and_listed(tmp_path):
    made = _make(str(tmp_path), "BasicLSTMCell")
    assert {"global_step", "beta1_power", "beta2_power", "rnn/basic_lstm_cell/kernel/Adam",
            "rnn/basic_lstm_cell/kernel/Adam_1", "dense/bias/Adam_1"} <= set(made.names)
    spec, params, _ = tf1_checkpoint.describe(tf1_checkpoint.read_checkpoint(made.prefix))
    assert sorted(params) == ["head/bias", "head/kernel", "rnn/0/fw/bias", "rnn/0/fw/kernel",
                              "rnn/0/fw/recurrent_kernel"]
    assert "global_step" in spec.description and "*/Adam, */Adam_1" in spec.description


def test_sources_say_where_each_tensor_came_from(tmp_path):
    made = _make(str(tmp_path), "MultiRNNCell_2_lstm")
    variables = tf1_checkpoint.read_checkpoint(made.prefix)
    _, params, sources = tf1_checkpoint.describe(variables)
    assert sources["rnn/1/fw/kernel"] == ("rnn/multi_rnn_cell/cell_1/basic_lstm_cell/kernel rows 0:4 (x), "
                                          "column blocks i,j,f,o -> i,f,g,o (j is g)")
    assert sources["rnn/1/fw/recurrent_kernel"].startswith(
        "rnn/multi_rnn_cell/cell_1/basic_lstm_cell/kernel rows 4:7 (h)")
    assert "forget_bias 1 is added" in sources["rnn/0/fw/bias"]
    # the f block of the canonical bias is TF1's third block (i, j, f, o), not its second
    stored = variables["rnn/multi_rnn_cell/cell_0/basic_lstm_cell/bias"]
    np.testing.assert_array_equal(params["rnn/0/fw/bias"][4:8], stored[8:12])


def test_as_sequence_spec_runs_in_tf1_cells(tmp_path):
    """The homogeneous SequenceSpec, built by adapters.tf1_cells from the described params, computes what
    the user's graph computed; a stack of differently sized layers has none."""
    from adapters import tf1_cells
    made = _make(str(tmp_path), "bidirectional_lstm")
    _, options, _ = MODELS["bidirectional_lstm"]
    spec, params, _ = tf1_checkpoint.describe(tf1_checkpoint.read_checkpoint(made.prefix), **options)
    seq = tf1_checkpoint.as_sequence_spec(spec)
    assert seq is not None and seq.bidirectional and seq.last_output == "last_step" and seq.forget_bias == 1.0
    batch = Batch(made.inputs, np.zeros_like(made.computed["prediction"]))
    got = tf1_cells.run(tf1_cells.build(seq, params, "float64"), seq, batch, "float64")
    _assert_close(got["output"]["prediction"], made.computed["prediction"], "tf1_cells prediction")
    multi = StackSpec("m", D, MODELS["MultiRNNCell_2_lstm"][2])
    assert tf1_checkpoint.as_sequence_spec(multi) is None


def test_wrong_forget_bias_is_caught(tmp_path):
    """The comparison above has teeth: the same checkpoint described with forget_bias 0 (what a Keras or
    torch port without TF1's run-time forget_bias computes) misses the graph's outputs."""
    made = _make(str(tmp_path), "BasicLSTMCell")
    spec, params, _ = tf1_checkpoint.describe(tf1_checkpoint.read_checkpoint(made.prefix), forget_bias=0.0)
    results = stack.evaluate(spec, params, Batch(made.inputs, np.zeros_like(made.computed["prediction"])))
    with pytest.raises(AssertionError, match="max \\|reference - TF1\\|"):
        _assert_close(results["output"]["prediction"], made.computed["prediction"], "prediction")


def _params(spec: StackSpec, seed: int, float32: bool = True) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {n: rng.normal(size=s) for n, s in stack.param_shapes(spec).items()}
    return {n: v.astype(np.float32).astype(np.float64) for n, v in out.items()} if float32 else out


ROUND_TRIPS = {
    "gru": (StackSpec("gru", 3, (Recurrent("rnn/0", "gru", 4, reset_after=False), Dense("head", 2))), "basic", {}),
    "lstm_cell_stack": (StackSpec("lstm_cell_stack", 3, (
        Recurrent("rnn/0", "lstm", 4, forget_bias=1.0, use_peepholes=True, proj_size=2),
        Recurrent("rnn/1", "lstm", 5, forget_bias=1.0), Dense("head", 2))), "lstm_cell", {}),
    "bidirectional_rnn_stack": (StackSpec("bidirectional_rnn_stack", 2, (
        Recurrent("rnn/0", "simple_rnn", 3, bidirectional=True, last_output="last_step"),
        Recurrent("rnn/1", "simple_rnn", 2, bidirectional=True, return_sequences=False, last_output="last_step"),
        Dense("head", 2, use_bias=False))), "basic", {"return_sequences": False, "activation": "tanh"}),
    "no_head": (StackSpec("no_head", 2, (Recurrent("rnn/0", "lstm", 3, forget_bias=1.0),)), "basic", {}),
}


@pytest.mark.parametrize("case", list(ROUND_TRIPS))
def test_write_read_describe_round_trips_bit_identically(case, tmp_path):
    spec, cell, options = ROUND_TRIPS[case]
    params = _params(spec, 3)
    prefix = str(tmp_path / "w.ckpt")
    tf1_checkpoint.write_checkpoint(prefix, spec, params, cell=cell)
    variables = tf1_checkpoint.read_checkpoint(prefix)
    assert {v.dtype for v in variables.values()} == {np.dtype(np.float32)}  # as TF1 models store them
    got, back, _ = tf1_checkpoint.describe(variables, name=spec.name, **options)
    assert replace(got, description="") == spec
    assert sorted(back) == sorted(params)
    for name, value in params.items():
        np.testing.assert_array_equal(back[name], value, err_msg=name)
    assert not os.path.exists(tmp_path / "checkpoint")  # the directory's latest-checkpoint file is left alone


def test_round_trip_keeps_float64_and_never_rounds(tmp_path):
    spec = ROUND_TRIPS["gru"][0]
    params = _params(spec, 4, float32=False)
    tf1_checkpoint.write_checkpoint(str(tmp_path / "a"), spec, params)
    back = tf1_checkpoint.describe(tf1_checkpoint.read_checkpoint(str(tmp_path / "a")))[1]
    for name, value in params.items():
        np.testing.assert_array_equal(back[name], value, err_msg=name)
    with pytest.raises(ValueError, match="would round when stored as float32"):
        tf1_checkpoint.write_checkpoint(str(tmp_path / "b"), spec, params, dtype="float32")


def test_written_names_are_the_names_tf1_cells_create(tmp_path):
    """write_checkpoint's variable names equal those the real cells made (MultiRNNCell, dense head)."""
    made = _make(str(tmp_path), "MultiRNNCell_2_lstm")
    spec, params, _ = tf1_checkpoint.describe(tf1_checkpoint.read_checkpoint(made.prefix))
    tf1_checkpoint.write_checkpoint(str(tmp_path / "again"), spec, params)
    assert sorted(tf1_checkpoint.read_checkpoint(str(tmp_path / "again"))) == sorted(made.names)


def test_write_refuses_what_tf1_cells_cannot_hold(tmp_path):
    spec = StackSpec("p", 3, (Recurrent("rnn/0", "lstm", 4, use_peepholes=True), Dense("head", 2)))
    with pytest.raises(ValueError, match="BasicLSTMCell has no peepholes"):
        tf1_checkpoint.write_checkpoint(str(tmp_path / "p"), spec, _params(spec, 0), cell="basic")
    spec = StackSpec("g", 3, (Recurrent("rnn/0", "gru", 4), Dense("head", 2)))  # reset_after=True
    with pytest.raises(ValueError, match="resets before the recurrent matmul"):
        tf1_checkpoint.write_checkpoint(str(tmp_path / "g"), spec, _params(spec, 0))


@pytest.fixture(scope="module")
def good_prefix(tmp_path_factory) -> str:
    spec = ROUND_TRIPS["gru"][0]
    prefix = str(tmp_path_factory.mktemp("good") / "model.ckpt")
    tf1_checkpoint.write_checkpoint(prefix, spec, _params(spec, 1))
    return prefix


def _damaged(good: str, where: str, how: str) -> str:
    target = os.path.join(where, "model.ckpt")
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(good + suffix, target + suffix)
    if how == "random index":
        with open(target + ".index", "wb") as f:
            f.write(np.random.default_rng(0).bytes(300))
    elif how == "half index":
        data = open(good + ".index", "rb").read()
        with open(target + ".index", "wb") as f:
            f.write(data[:len(data) // 2])
    elif how == "truncated data":
        data = open(good + ".data-00000-of-00001", "rb").read()
        with open(target + ".data-00000-of-00001", "wb") as f:
            f.write(data[:10])
    elif how == "corrupt data":
        data = bytearray(open(good + ".data-00000-of-00001", "rb").read())
        data[5] ^= 0xFF
        with open(target + ".data-00000-of-00001", "wb") as f:
            f.write(bytes(data))
    elif how == "no data":
        os.remove(target + ".data-00000-of-00001")
    elif how == "random bytes":
        os.remove(target + ".index")
        with open(target, "wb") as f:
            f.write(np.random.default_rng(1).bytes(300))
    return target


@pytest.mark.parametrize("how", ["missing", "directory", "index file", "random index", "half index", "truncated data",
                                 "corrupt data", "no data", "random bytes", "tf2 checkpoint"])
def test_bad_prefix_gives_one_line(how, good_prefix, tmp_path):
    if how == "missing":
        prefix = str(tmp_path / "nope.ckpt")
    elif how == "directory":
        prefix = os.path.dirname(good_prefix)
    elif how == "index file":
        prefix = good_prefix + ".index"
    elif how == "tf2 checkpoint":
        tf, _ = _tf()
        prefix = tf.train.Checkpoint(v=tf.Variable([1.0, 2.0])).write(str(tmp_path / "tf2"))
    else:
        prefix = _damaged(good_prefix, str(tmp_path), how)
    with pytest.raises(ValueError) as caught:
        tf1_checkpoint.read_checkpoint(prefix)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{prefix}: ")
    meant = good_prefix if how == "index file" else prefix  # the message names the prefix that was meant
    assert message.endswith(f"tf.compat.v1.train.Saver: {meant}.index and {meant}.data-00000-of-00001")


def _save(prefix: str, variables: dict[str, np.ndarray]) -> None:
    tf, _ = _tf()
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default(), v1.Session(graph=graph) as session:
        made = [v1.get_variable(n, initializer=v) for n, v in variables.items()]
        session.run(v1.global_variables_initializer())
        v1.train.Saver(made).save(session, prefix)


def test_nan_is_named(tmp_path):
    kernel = np.arange(12.0, dtype=np.float32).reshape(6, 2)
    kernel[2, 1] = np.nan
    _save(str(tmp_path / "n"), {"rnn/basic_rnn_cell/kernel": kernel, "rnn/basic_rnn_cell/bias": np.ones(2, np.float32)})
    with pytest.raises(ValueError, match="variable rnn/basic_rnn_cell/kernel holds 1 NaN"):
        tf1_checkpoint.read_checkpoint(str(tmp_path / "n"))


CELL = {"rnn/basic_lstm_cell/kernel": np.ones((5, 8)), "rnn/basic_lstm_cell/bias": np.ones(8)}


@pytest.mark.parametrize("extra, match", [
    ({"embedding": np.ones((10, 3))}, r"variable\(s\) embedding \(10, 3\) not recognised; expected TF1 cell variables"),
    ({"dense/kernel": np.ones((2, 3)), "dense/bias": np.ones(3), "extra_bias": np.ones(7)}, "extra_bias"),
    ({"rnn/basic_lstm_cell/w_i_diag": np.ones(2)},
     r"rnn/basic_lstm_cell/w_i_diag \(2,\) not recognised.*; a basic_lstm_cell holds only kernel, bias$"),
    ({"dense/kernel": np.ones((3, 3)), "dense/bias": np.ones(3)}, r"a 2-D kernel \(2, O\)"),
    ({"decoder/rnn/basic_lstm_cell/kernel": np.ones((5, 8)), "decoder/rnn/basic_lstm_cell/bias": np.ones(8)},
     r"several scopes \['decoder/rnn', 'rnn'\]"),
])
def test_unrecognised_variable_is_named(extra, match):
    with pytest.raises(ValueError, match=match):
        tf1_checkpoint.describe(CELL | extra)


def test_structures_a_stack_cannot_express_are_refused():
    fw_bw = {f"bidirectional_rnn/{d}/multi_rnn_cell/cell_{k}/gru_cell/{n}": np.ones(s)
             for d in ("fw", "bw") for k in range(2)
             for n, s in (("gates/kernel", (6, 4)), ("gates/bias", 4), ("candidate/kernel", (6, 2)),
                          ("candidate/bias", 2))}
    with pytest.raises(ValueError, match="two independent deep stacks"):
        tf1_checkpoint.describe(fw_bw)
    chained = CELL | {"rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel": np.ones((5, 8))}
    with pytest.raises(ValueError, match="two cells in one place|MultiRNNCell cells"):
        tf1_checkpoint.describe(chained)
    wrong_rows = {"rnn/gru_cell/gates/kernel": np.ones((6, 4)), "rnn/gru_cell/gates/bias": np.ones(4),
                  "rnn/gru_cell/candidate/kernel": np.ones((5, 2)), "rnn/gru_cell/candidate/bias": np.ones(2)}
    with pytest.raises(ValueError, match="candidate/kernel has shape \\(5, 2\\)"):
        tf1_checkpoint.describe(wrong_rows)


def test_contrib_stacked_bidirectional_names_stack_in_order():
    """stack_bidirectional_rnn (contrib, static) scopes each layer cell_N; the number orders the layers
    (cell_10 after cell_2), and widths must chain."""
    def layer(k: int, d_in: int) -> dict[str, np.ndarray]:
        return {f"stack_bidirectional_rnn/cell_{k}/{d}/basic_rnn_cell/{n}": np.full(s, k + 1.0)
                for d in ("fw", "bw") for n, s in (("kernel", (d_in + 2, 2)), ("bias", (2,)))}
    variables = layer(0, 3) | layer(1, 4) | layer(2, 4) | layer(10, 4)
    spec, params, _ = tf1_checkpoint.describe(variables)
    assert [l.name for l in spec.recurrent_layers] == ["rnn/0", "rnn/1", "rnn/2", "rnn/3"]
    assert params["rnn/3/bw/bias"][0] == 11.0 and params["rnn/2/fw/bias"][0] == 3.0
