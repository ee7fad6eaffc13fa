"""Optimisers as pure functions over explicit state, each in torch 2.13's and Keras 3.15's own variant.

``init(name, params, variant, **hyper) -> state`` and ``step(name, params, grads, state, lr, variant, **hyper) ->
(new_params, new_state)``; ``state`` is ``{"step": t, slot: {tensor name: array}}`` and nothing is changed in
place. Every operation runs in the parameters' dtype, in the order the framework's own code runs it (read from
torch/optim/*.py and keras/src/optimizers/*.py as installed), so that float64 agrees to rounding. ``variant`` is
"torch" or "keras"; hyper-parameters not given take that framework's default (``defaults``).

Before every update, in this order (g: the gradient, p: the weights, t: the step count from 1):

* clipping, ``clip_norm`` (by the global norm over all tensors) and ``clip_value``:
  torch (``nn.utils.clip_grad_norm_`` then ``clip_grad_value_``, as adapters/torch_seq2seq.py calls them):
  g <- g * min(clip_norm / (||g|| + 1e-6), 1), then g <- clamp(g, -clip_value, clip_value);
  keras (``global_clipnorm``, ``clipvalue``): g <- g * clip_norm * min(1 / ||g||, 1 / clip_norm), or the clamp;
  Keras 3 refuses both at once, so the keras variant does too.
* float32-rounded hyper-parameters (keras only; torch uses every Python float as given): Keras keeps the
  learning rate in a ``backend.floatx()`` (float32) variable whatever the model's dtype, and the values it passes
  through ``ops.cast(python_float, dtype)`` (``tf.cast`` makes a float32 tensor of a Python float first) are
  rounded to float32 too: SGD's momentum, Adam's betas where they are raised to the power t, the weight decay and
  Adagrad's initial accumulator (its ``Constant`` initializer casts). Written x32 = float32(x) below, e.g.
  lr32 (0.01 -> 0.009999999776), mu32 (0.9 -> 0.8999999762). Values Keras combines with a tensor directly (1 - b1,
  1 - b2, rho, 1 - rho, epsilon) stay exact in float64. Modelled as exact, they left float64 Keras steps 6e-10
  (Adagrad) to 1.6e-7 (Adam) away from this module's (tests/test_optimizers.py accepts 1e-12).
* weight decay ``weight_decay`` (wd): torch adds L2 to the gradient, g <- g + wd * p, in every optimiser but
  AdamW, which decays p <- p * (1 - lr * wd) before its update; Keras decays every optimiser decoupled,
  p <- p - p * wd32 * lr32, before its update (AdamW is Adam with wd defaulting to 0.004).

The updates (state slots start at zero unless said otherwise):

* ``sgd``: torch p <- p - lr * g; keras p <- p - lr32 * g.
* ``momentum`` (mu, 0.9 here in both; 0 in both frameworks' SGD means plain SGD):
  torch b <- mu * b + g (b = g at t = 1, which is mu * 0 + g exactly), p <- p - lr * b;
  keras v <- mu32 * v - lr32 * g, p <- p + v. Equal in exact arithmetic only while lr is constant
  (torch's b is v / -lr) and for float32-exact mu and lr; they round differently.
* ``nesterov``: torch b as above, p <- p - lr * (g + mu * b); keras v as above, p <- p + (mu32 * v - lr32 * g).
* ``adagrad``: torch (eps 1e-10, initial_accumulator_value 0) s <- s + g * g, p <- p - lr * g / (sqrt(s) + eps);
  keras (epsilon 1e-7, initial_accumulator_value 0.1) a <- a + g * g from a = float32(0.1),
  p <- p - lr32 * g / sqrt(a + eps): Keras's accumulator starts at 0.1 and its epsilon sits inside the root.
* ``rmsprop`` (``rmsprop_centered`` sets centered): torch (alpha, here ``rho``, 0.99; eps 1e-8)
  s <- rho * s + (1 - rho) * g * g, centered a <- a + (1 - rho) * (g - a) (torch's lerp), then
  p <- p - lr * g / (sqrt(s [- a * a]) + eps); keras (rho 0.9, epsilon 1e-7) v <- rho * v + (1 - rho) * g * g,
  centered a <- rho * a + (1 - rho) * g, p <- p - lr32 * g / sqrt(v [- a * a] + eps): epsilon inside the root.
* ``adam``: m <- m + (1 - b1) * (g - m), v <- b2 * v + (1 - b2) * g * g (both; b1 0.9, b2 0.999);
  torch (eps 1e-8): p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps): eps added to sqrt(v-hat);
  keras (epsilon 1e-7): p <- p - m * (lr32 * sqrt(1 - b2_32^t) / (1 - b1_32^t)) / (sqrt(v) + eps): eps added to
  sqrt(v) before the bias correction, i.e. torch's rule with eps / sqrt(1 - b2^t) (31.6 x eps at t = 1).
  torch's ``weight_decay`` on Adam is L2 in the gradient (see above).
* ``adamw``: Adam after the decoupled decay; torch p <- p * (1 - lr * wd) (wd 0.01),
  keras p <- p - p * wd32 * lr32 (wd 0.004).
"""
from __future__ import annotations

from typing import Any

import numpy as np

NAMES = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "rmsprop_centered", "adam", "adamw")
VARIANTS = ("torch", "keras")
CLIP = ("clip_norm", "clip_value")
TORCH_CLIP_EPS = 1e-6  # torch.nn.utils.clip_grad_norm_ divides by (total_norm + 1e-6)

# each framework's own defaults (torch.optim.X.__init__, keras.optimizers.X.__init__; tests/test_optimizers.py
# reads them back from the signatures), except momentum 0.9 for "momentum" and "nesterov", whose names say there is
# momentum where both frameworks' SGD default to none; rho is torch RMSprop's alpha
_DEFAULTS: dict[str, dict[str, dict[str, float]]] = {
    "torch": {
        "sgd": {"weight_decay": 0.0},
        "momentum": {"momentum": 0.9, "weight_decay": 0.0},
        "nesterov": {"momentum": 0.9, "weight_decay": 0.0},
        "adagrad": {"eps": 1e-10, "initial_accumulator_value": 0.0, "weight_decay": 0.0},
        "rmsprop": {"rho": 0.99, "eps": 1e-8, "weight_decay": 0.0},
        "rmsprop_centered": {"rho": 0.99, "eps": 1e-8, "weight_decay": 0.0},
        "adam": {"beta_1": 0.9, "beta_2": 0.999, "eps": 1e-8, "weight_decay": 0.0},
        "adamw": {"beta_1": 0.9, "beta_2": 0.999, "eps": 1e-8, "weight_decay": 1e-2},
    },
    "keras": {
        "sgd": {"weight_decay": 0.0},
        "momentum": {"momentum": 0.9, "weight_decay": 0.0},
        "nesterov": {"momentum": 0.9, "weight_decay": 0.0},
        "adagrad": {"eps": 1e-7, "initial_accumulator_value": 0.1, "weight_decay": 0.0},
        "rmsprop": {"rho": 0.9, "eps": 1e-7, "weight_decay": 0.0},
        "rmsprop_centered": {"rho": 0.9, "eps": 1e-7, "weight_decay": 0.0},
        "adam": {"beta_1": 0.9, "beta_2": 0.999, "eps": 1e-7, "weight_decay": 0.0},
        "adamw": {"beta_1": 0.9, "beta_2": 0.999, "eps": 1e-7, "weight_decay": 0.004},
    },
}
SLOTS = {"sgd": (), "momentum": ("momentum",), "nesterov": ("momentum",), "adagrad": ("accumulator",),
         "rmsprop": ("velocity",), "rmsprop_centered": ("velocity", "average_gradient"), "adam": ("m", "v"),
         "adamw": ("m", "v")}
NONNEGATIVE_SLOTS = ("accumulator", "velocity", "v")  # sums and averages of g * g


def _check(name: str, variant: str) -> None:
    if name not in NAMES:
        raise ValueError(f"unknown optimiser {name!r}; expected one of: {', '.join(NAMES)}")
    if variant not in VARIANTS:
        raise ValueError(f"unknown optimiser variant {variant!r}; expected one of: {', '.join(VARIANTS)}")


def defaults(name: str, variant: str) -> dict[str, float | None]:
    """The hyper-parameters ``name`` takes in ``variant`` when none are given (clipping off)."""
    _check(name, variant)
    return {**_DEFAULTS[variant][name], "clip_norm": None, "clip_value": None}


def resolve(name: str, variant: str, **hyper: Any) -> dict[str, Any]:
    """``hyper`` over the variant's defaults; ValueError (one line) for a name the optimiser does not take."""
    full = defaults(name, variant)
    unknown = sorted(set(hyper) - set(full))
    if unknown:
        raise ValueError(f"optimiser {name!r} takes no {', '.join(unknown)}; it takes: {', '.join(full)}")
    full.update(hyper)
    if variant == "keras" and full["clip_norm"] is not None and full["clip_value"] is not None:
        raise ValueError("keras: only one of clip_norm and clip_value (Keras 3 refuses both at once)")
    return full


def _f32(x: float) -> float:
    return float(np.float32(x))


def effective_lr(lr: float, variant: str) -> float:
    """The learning rate the framework computes with: Keras keeps it in a float32 variable (see above)."""
    return _f32(lr) if variant == "keras" else float(lr)


def init(name: str, params: dict[str, np.ndarray], variant: str = "torch", **hyper: Any) -> dict[str, Any]:
    """The optimiser's state before its first step: zeros, and the variant's initial accumulator for adagrad."""
    h = resolve(name, variant, **hyper)
    state: dict[str, Any] = {"step": 0}
    for slot in SLOTS[name]:
        fill = h["initial_accumulator_value"] if slot == "accumulator" else 0.0
        if variant == "keras":
            fill = _f32(fill)
        state[slot] = {n: np.full_like(v, fill) for n, v in params.items()}
    return state


def global_norm(grads: dict[str, np.ndarray], variant: str) -> float:
    """||g|| over every tensor: torch as the norm of the per-tensor norms, Keras as the root of the summed squares."""
    if variant == "torch":
        return float(np.linalg.norm(np.array([np.linalg.norm(g.ravel()) for g in grads.values()])))
    return float(np.sqrt(np.sum(np.stack([np.sum(np.square(g)) for g in grads.values()]))))


def clip_coefficient(grads: dict[str, np.ndarray], clip_norm: float, variant: str) -> float:
    """The factor clipping by the global norm multiplies every gradient by (1 when the norm is within clip_norm,
    up to torch's 1e-6)."""
    norm = global_norm(grads, variant)
    if variant == "torch":
        return min(clip_norm / (norm + TORCH_CLIP_EPS), 1.0)
    return clip_norm * min(1.0 / norm, 1.0 / clip_norm) if norm > 0 else 1.0


def clip(grads: dict[str, np.ndarray], variant: str, clip_norm: float | None = None,
         clip_value: float | None = None) -> dict[str, np.ndarray]:
    """The gradients as the variant clips them before its update (module docstring)."""
    out = dict(grads)
    if clip_norm is not None:
        dt = next(iter(grads.values())).dtype
        c = np.asarray(clip_coefficient(grads, clip_norm, variant), dt)
        out = {n: g * c for n, g in out.items()}
    if clip_value is not None:
        out = {n: np.clip(g, -clip_value, clip_value) for n, g in out.items()}
    return out


def _lerp(a: np.ndarray, b: np.ndarray, w: float, dt: np.dtype) -> np.ndarray:
    """torch.lerp's CPU formula, which switches form at w = 0.5 to stay exact at both ends."""
    w_ = np.asarray(w, dt)
    return a + w_ * (b - a) if w < 0.5 else b - (b - a) * np.asarray(1.0 - w, dt)


def _torch_update(name: str, p: np.ndarray, g: np.ndarray, slots: dict[str, np.ndarray], t: int, lr: float,
                  h: dict) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    dt = p.dtype
    c = lambda x: np.asarray(x, dt)  # noqa: E731 - a Python float as the tensor's dtype, as torch's scalar args
    wd = h["weight_decay"]
    if wd != 0 and name != "adamw":
        g = g + c(wd) * p
    if name == "sgd":
        return p + c(-lr) * g, {}
    if name in ("momentum", "nesterov"):
        mu = c(h["momentum"])
        b = slots["momentum"] * mu + g
        return p + c(-lr) * (g + mu * b if name == "nesterov" else b), {"momentum": b}
    if name == "adagrad":
        s = slots["accumulator"] + g * g
        # lr_decay 0: clr = lr / (1 + (t - 1) * 0), exactly lr
        return p + c(-lr) * (g / (np.sqrt(s) + c(h["eps"]))), {"accumulator": s}
    if name in ("rmsprop", "rmsprop_centered"):
        rho = h["rho"]
        s = slots["velocity"] * c(rho) + c(1 - rho) * g * g
        new = {"velocity": s}
        if name == "rmsprop_centered":
            a = _lerp(slots["average_gradient"], g, 1 - rho, dt)
            new["average_gradient"] = a
            avg = np.sqrt(s + c(-1.0) * a * a)
        else:
            avg = np.sqrt(s)
        return p + c(-lr) * (g / (avg + c(h["eps"]))), new
    # adam, adamw
    if name == "adamw" and wd != 0:
        p = p * c(1 - lr * wd)
    b1, b2 = h["beta_1"], h["beta_2"]
    m = _lerp(slots["m"], g, 1 - b1, dt)
    v = slots["v"] * c(b2) + c(1 - b2) * g * g
    step_size = lr / (1 - b1 ** float(t))
    bc2_sqrt = (1 - b2 ** float(t)) ** 0.5
    denom = np.sqrt(v) / c(bc2_sqrt) + c(h["eps"])
    return p + c(-step_size) * (m / denom), {"m": m, "v": v}


def _keras_update(name: str, p: np.ndarray, g: np.ndarray, slots: dict[str, np.ndarray], t: int, lr: float,
                  h: dict) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    dt = p.dtype
    c = lambda x: np.asarray(x, dt)  # noqa: E731 - Keras casts its Python floats to the variable's dtype
    lr_ = c(lr)
    wd = h["weight_decay"]
    if wd != 0:
        p = p - p * c(_f32(wd)) * lr_
    if name == "sgd":
        return p - g * lr_, {}
    if name in ("momentum", "nesterov"):
        mu = c(_f32(h["momentum"]))
        v = slots["momentum"] * mu - g * lr_
        return p + (v * mu - g * lr_ if name == "nesterov" else v), {"momentum": v}
    if name == "adagrad":
        a = slots["accumulator"] + np.square(g)
        return p - (lr_ * g) / np.sqrt(a + c(h["eps"])), {"accumulator": a}
    if name in ("rmsprop", "rmsprop_centered"):
        rho = h["rho"]
        v = c(rho) * slots["velocity"] + c(1 - rho) * np.square(g)
        new = {"velocity": v}
        if name == "rmsprop_centered":
            a = c(rho) * slots["average_gradient"] + c(1 - rho) * g
            new["average_gradient"] = a
            denominator = v - np.square(a) + c(h["eps"])
        else:
            denominator = v + c(h["eps"])
        return p - (lr_ * g) / np.sqrt(denominator), new
    # adam, adamw (the decay above)
    b1, b2 = h["beta_1"], h["beta_2"]
    local_step = c(float(t))
    b1_power, b2_power = np.power(c(_f32(b1)), local_step), np.power(c(_f32(b2)), local_step)
    alpha = lr_ * np.sqrt(c(1) - b2_power) / (c(1) - b1_power)
    m = slots["m"] + (g - slots["m"]) * c(1 - b1)
    v = slots["v"] + (np.square(g) - slots["v"]) * c(1 - b2)
    return p - (m * alpha) / (np.sqrt(v) + c(h["eps"])), {"m": m, "v": v}


def step(name: str, params: dict[str, np.ndarray], grads: dict[str, np.ndarray], state: dict[str, Any], lr: float,
         variant: str = "torch", **hyper: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """One update of every tensor in ``grads`` (others are kept), and the state after it; inputs are not changed."""
    h = resolve(name, variant, **hyper)
    g_all = clip(grads, variant, h["clip_norm"], h["clip_value"])
    t = int(state["step"]) + 1
    lr_eff = effective_lr(lr, variant)
    update = _torch_update if variant == "torch" else _keras_update
    new_params = dict(params)
    new_state: dict[str, Any] = {"step": t, **{slot: dict(state[slot]) for slot in SLOTS[name]}}
    for n, g in g_all.items():
        p, slots = update(name, params[n], g.astype(params[n].dtype, copy=False),
                          {slot: state[slot][n] for slot in SLOTS[name]}, t, lr_eff, h)
        new_params[n] = p.astype(params[n].dtype, copy=False)
        for slot, value in slots.items():
            new_state[slot][n] = value
    return new_params, new_state


def describe(name: str, variant: str, lr: float, **hyper: Any) -> str:
    """The optimiser, its variant and every hyper-parameter it runs with, in one phrase for a report's notes."""
    h = resolve(name, variant, **hyper)
    parts = [f"{k} {v:g}" for k, v in h.items() if v is not None]
    lr_eff = effective_lr(lr, variant)
    rounded = f" (stored as float32: {lr_eff:.10g})" if lr_eff != lr else ""
    return f"{name}, {variant} variant: lr {lr:g}{rounded}, " + ", ".join(parts)
