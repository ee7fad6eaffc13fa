"""How the Keras adapters train: keras.optimizers' optimiser for reference/optimizers.py's names, clipping included."""
from __future__ import annotations

from typing import Any


def optimizer(keras: Any, name: str, lr: float, hyper: dict) -> Any:
    """keras.optimizers' optimiser for the reference's ``name`` with every hyper-parameter the reference resolves
    (the reference's defaults are Keras's own; ``clip_norm`` is ``global_clipnorm``, ``clip_value`` ``clipvalue``)."""
    from reference import optimizers
    h = optimizers.resolve(name, "keras", **hyper)
    wd = float(h["weight_decay"]) if h["weight_decay"] or name == "adamw" else None  # None: Keras skips the decay
    common = dict(learning_rate=float(lr), weight_decay=wd, global_clipnorm=h["clip_norm"], clipvalue=h["clip_value"])
    if name in ("sgd", "momentum", "nesterov"):
        mu = 0.0 if name == "sgd" else float(h["momentum"])
        return keras.optimizers.SGD(momentum=mu, nesterov=name == "nesterov", **common)
    if name == "adagrad":
        return keras.optimizers.Adagrad(initial_accumulator_value=h["initial_accumulator_value"], epsilon=h["eps"],
                                        **common)
    if name in ("rmsprop", "rmsprop_centered"):
        return keras.optimizers.RMSprop(rho=h["rho"], epsilon=h["eps"], centered=name == "rmsprop_centered", **common)
    cls = keras.optimizers.AdamW if name == "adamw" else keras.optimizers.Adam
    return cls(beta_1=h["beta_1"], beta_2=h["beta_2"], epsilon=h["eps"], **common)


def global_norm(keras: Any, grads: list) -> Any:
    """The global norm ``global_clipnorm`` clips by, computed as Keras 3.15 computes it
    (keras/src/optimizers/base_optimizer.py ``global_norm``: each tensor's sum of squares, stacked, summed, the root)
    on the same gradients: the same ops in the same order, so the same number (tests/test_stack_training.py
    compares it with Keras's own)."""
    ops = keras.ops
    return ops.sqrt(ops.sum(ops.stack([ops.sum(ops.square(g)) for g in grads if g is not None])))
