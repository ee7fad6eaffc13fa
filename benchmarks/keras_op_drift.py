"""Where the Keras 2 <-> Keras 3 drift comes from: TensorFlow's ops, and the zoo's stack models with activations pinned.

    .venv/bin/python benchmarks/keras_op_drift.py dump OUT_A.npz          # under TF 2.21 / Keras 3
    .venvs/tf215/bin/python benchmarks/keras_op_drift.py dump OUT_B.npz   # under TF 2.15 / Keras 2
    .venv/bin/python benchmarks/keras_op_drift.py compare OUT_A.npz OUT_B.npz

``dump`` records, in the running environment, (1) the ops the Keras recurrent cells and heads run (Tanh, Sigmoid,
hard_sigmoid as Keras 3 computes it, MatMul, AddV2, Mul, Softmax, Log, Exp, the gradients TanhGrad, SigmoidGrad,
Relu6Grad, and a bias's gradient through BiasAdd and AddV2) on a grid over [-9, 9] and on random matrices, float32
and float64; (2) every stack zoo model run by the Keras stack adapter (``keras_stack.run``) on its seed-0 weights and
batch, once as built and once with tanh and sigmoid "pinned": computed in float64 from the Sigmoid kernel alone and
rounded to the model's dtype, which both releases compute bit for bit. ``compare`` prints, per op, how many values
differ and by how many ulp, and per model the largest difference of every result (outputs, states, loss, gradients)
as built and pinned. Where the pinned difference is 0, the drift between the two
releases comes from their Tanh/Sigmoid kernels alone (the Keras layers then run the same ops in the same order).
"""
from __future__ import annotations

import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
MODELS = ("rnn", "lstm", "gru", "gru_reset_before", "bidirectional", "stacked", "bidirectional_stacked_hard")
DTYPES = ("float32", "float64")


def _ops(dtype: str) -> dict[str, np.ndarray]:
    from adapters.tf_import import import_tf
    tf, _ = import_tf()
    grid = tf.constant(np.linspace(-9.0, 9.0, 36001), dtype)
    rng = np.random.default_rng(0)
    a, b = (tf.constant(rng.uniform(-1, 1, s), dtype) for s in ((64, 37), (37, 48)))
    up = tf.constant(rng.uniform(-1, 1, 36001), dtype)
    out: dict[str, np.ndarray] = {}
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(grid)
        fns = {"tanh": tf.nn.tanh(grid), "sigmoid": tf.nn.sigmoid(grid),
               "hard_sigmoid": tf.nn.relu6(grid + tf.constant(3.0, dtype)) / tf.constant(6.0, dtype)}
    for name, y in fns.items():
        out[name] = y.numpy()
        out[name + " gradient"] = tape.gradient(y, grid, output_gradients=up).numpy()
    out["matmul"] = tf.matmul(a, b).numpy()
    # the article models' heads and loss: softmax over the classes, log of the clipped probabilities
    logits = tf.constant(rng.uniform(-6, 6, (640, 10)), dtype)
    out["softmax"] = tf.nn.softmax(logits, axis=-1).numpy()
    out["log"] = tf.math.log(tf.constant(rng.uniform(1e-10, 1, 36001), dtype)).numpy()
    out["exp"] = tf.math.exp(grid).numpy()
    # a Dense head at every step (the zoo's: batch 8, 10 steps, 1 or 2 outputs): Keras 2 adds its bias with BiasAdd
    # (gradient: BiasAddGrad), Keras 3 with AddV2 (its gradient: Sum over the broadcast axes); the same B*T terms,
    # summed in another order
    for units in (1, 2):
        y3, bias = tf.constant(rng.uniform(-1, 1, (8, 10, units)), dtype), tf.constant(rng.uniform(-1, 1, units), dtype)
        dy = tf.constant(rng.uniform(-1, 1, (8, 10, units)), dtype)
        for name, add in (("BiasAdd", tf.nn.bias_add), ("AddV2", tf.add)):
            with tf.GradientTape() as tape:
                tape.watch(bias)
                z = add(y3, bias)
            out[f"bias gradient ({units}) via {name}"] = tape.gradient(z, bias, output_gradients=dy).numpy()
    out["add"] = (grid + up).numpy()
    out["mul"] = (grid * up).numpy()
    return out


_PINNED: dict = {}


def _pinned(name: str):
    """tanh or sigmoid computed in float64 from float64 Sigmoid alone (tanh x = 2 sigmoid(2x) - 1), which both releases
    compute bit for bit, and rounded to the input's dtype (the gradient likewise, through the casts). Registered,
    since Bidirectional re-creates its backward layer from the config."""
    if name not in _PINNED:
        from adapters.tf_import import import_tf
        tf, keras = import_tf()
        f64 = {"tanh": lambda z: 2.0 * tf.nn.sigmoid(2.0 * z) - 1.0, "sigmoid": tf.nn.sigmoid}[name]

        def fn(z):
            return tf.cast(f64(tf.cast(z, "float64")), z.dtype)
        fn.__name__ = fn.__qualname__ = f"pinned_{name}"
        _PINNED[name] = keras.saving.register_keras_serializable(package="op_drift")(fn)
    return _PINNED[name]


def _models(pinned: bool) -> dict[str, np.ndarray]:
    from adapters import keras_compat, keras_stack
    from reference.params import init_params
    from verify import zoo
    out: dict[str, np.ndarray] = {}
    real, real_name = keras_compat.activation, keras_compat.activation_name
    if pinned:  # every tanh and sigmoid the adapter passes Keras becomes its pinned twin, and is read back as itself
        keras_compat.activation = lambda n: _pinned(n) if n in ("tanh", "sigmoid") else real(n)
        keras_compat.activation_name = lambda fn, allowed: next(
            (n for n, f in _PINNED.items() if f is fn), None) or real_name(fn, allowed)
    try:
        for model in MODELS:
            entry = zoo.get(model)
            rng = np.random.default_rng(0)
            params = init_params(entry.spec, rng)
            batch = entry.make_batch(entry.spec, rng)
            for dtype in DTYPES:
                built = keras_stack.build(entry.spec, params, dtype)
                for q, tensors in keras_stack.run(built, entry.spec, batch, dtype).items():
                    for n, v in tensors.items():
                        out[f"{model}|{dtype}|{'pinned' if pinned else 'built'}|{q} {n}"] = np.asarray(v)
    finally:
        keras_compat.activation, keras_compat.activation_name = real, real_name
    return out


def dump(path: str) -> None:
    from adapters import keras3
    arrays = {f"op|{d}|{k}": v for d in DTYPES for k, v in _ops(d).items()}
    arrays.update(_models(False))
    arrays.update(_models(True))
    np.savez_compressed(path, **arrays)
    print(f"{path}: {len(arrays)} arrays, {keras3.versions()}")


def _ulps(a: np.ndarray, b: np.ndarray) -> int:
    if a.dtype != b.dtype or a.dtype.kind != "f":
        return -1
    ints = {4: np.int32, 8: np.int64}[a.dtype.itemsize]
    ia, ib = a.view(ints).astype(np.int64), b.view(ints).astype(np.int64)
    return int(np.max(np.abs(ia - ib))) if a.size else 0


def compare(path_a: str, path_b: str) -> None:
    with np.load(path_a) as fa, np.load(path_b) as fb:
        a, b = dict(fa), dict(fb)
    print("| op | dtype | values that differ | most ulp apart | max abs difference |\n| --- | --- | --- | --- | --- |")
    for k in sorted(x for x in a if x.startswith("op|")):
        _, dtype, name = k.split("|")
        differ = a[k] != b[k]
        print(f"| {name} | {dtype} | {differ.mean():.1%} of {differ.size} | {_ulps(a[k], b[k])} | "
              f"{np.max(np.abs(a[k] - b[k])):.2g} |")
    for label, f in (("A", a), ("B", b)):
        for dtype in DTYPES:
            for units in (1, 2):
                key = f"op|{dtype}|bias gradient ({units}) via "
                via = f[key + "BiasAdd"], f[key + "AddV2"]
                print(f"{label} {dtype}: bias gradient of a (8, 10, {units}) head, BiasAdd vs AddV2 in the same "
                      f"release: max abs {np.max(np.abs(via[0] - via[1])):.2g}, {_ulps(*via)} ulp")
    print("\n| model | dtype | as built: tensors that differ, largest max abs (tensor) | pinned tanh and sigmoid |")
    print("| --- | --- | --- | --- |")
    for model in MODELS:
        for dtype in DTYPES:
            row = []
            for how in ("built", "pinned"):
                keys = [k for k in a if k.startswith(f"{model}|{dtype}|{how}|")]
                diffs = {k.split("|")[3]: float(np.max(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64))))
                         for k in keys}
                moved = {k: v for k, v in diffs.items() if v > 0}
                worst = max(moved, key=moved.get, default=None)
                row.append(f"{len(moved)} of {len(diffs)}" + (f", {moved[worst]:.2g} ({worst})" if worst else ""))
            print(f"| {model} | {dtype} | {row[0]} | {row[1]} |")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "dump":
        dump(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "compare":
        compare(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__.splitlines()[2].strip())
