"""Device policy for ``compare --device``: where each framework runs, the precision its kernels round at, the notes."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

import numpy as np

from verify import tolerance

DEVICES = ("cpu", "cuda")
# TF32 tensor cores came with Ampere (compute capability 8.0): on an older GPU the TF32 flags change nothing
TF32_CAPABILITY = (8, 0)
# torch kernel families whose float32 rounding torch's flags set separately: cuBLAS matmuls (nn.Linear, @, the
# loop of torch ops) and cuDNN's fused RNN kernels (nn.RNN/LSTM/GRU on a CUDA device)
TORCH_KERNELS = ("matmul", "cudnn_rnn")
KERNEL_WORDS = {"matmul": "cuBLAS matmul", "cudnn_rnn": "cuDNN RNN"}


@dataclass(frozen=True)
class TorchFlags:
    """torch's settings that decide how float32 kernels round on its CUDA device (``torch_flags`` reads them)."""

    matmul_tf32: bool                   # torch.backends.cuda.matmul.fp32_precision "tf32" (allow_tf32; default off)
    cudnn_rnn_tf32: bool                # torch.backends.cudnn.rnn.fp32_precision "tf32" (cudnn.allow_tf32; default on)
    cudnn: bool                         # cuDNN enabled and present: nn.RNN/LSTM/GRU on CUDA run its kernels
    capability: tuple[int, int] | None  # the device's compute capability
    where: str = "cuda"                 # the device, in words
    read: str = ""                      # the flags as read, in torch's names, for the notes


@dataclass(frozen=True)
class TensorFlowFlags:
    """TensorFlow's GPU and its TF32 setting (``tensorflow_flags`` reads them)."""

    gpu: bool                           # TensorFlow sees a GPU
    tf32: bool                          # tf.config.experimental.tensor_float_32_execution_enabled() (default on)
    capability: tuple[int, int] | None
    where: str = "GPU:0"


@dataclass(frozen=True)
class Placement:
    """Where one framework runs and what its kernels round at (a dtype, or "tf32")."""

    framework: str
    where: str
    precision: str
    how: str = ""       # the flags and kernels that decided ``precision``, for the notes
    gpu_visible: bool = False   # TensorFlow sees a GPU (and would take it unless told otherwise)

    @property
    def on_gpu(self) -> bool:
        return self.where != "cpu"


def tf32_active(enabled: bool, capability: tuple[int, int] | None) -> bool:
    """Whether a float32 kernel with its TF32 flag ``enabled`` rounds at TF32 on a device of ``capability``."""
    return enabled and capability is not None and tuple(capability) >= TF32_CAPABILITY


def coarsest(precisions: Iterable[str], default: str) -> str:
    """The precision with the largest unit roundoff (``default`` for none): what a run through all of them
    rounds at, at worst."""
    return max(precisions, key=tolerance.unit_roundoff, default=default)


def torch_kernel_precisions(dtype: str, flags: TorchFlags) -> dict[str, str]:
    """Each torch kernel family's precision on the CUDA device (``TORCH_KERNELS``): TF32 only for float32 and only
    where its flag is on and the device has TF32 cores; without cuDNN torch's own RNN kernels call cuBLAS."""
    if dtype != "float32":
        return dict.fromkeys(TORCH_KERNELS, dtype)
    matmul = "tf32" if tf32_active(flags.matmul_tf32, flags.capability) else dtype
    rnn = ("tf32" if tf32_active(flags.cudnn_rnn_tf32, flags.capability) else dtype) if flags.cudnn else matmul
    return {"matmul": matmul, "cudnn_rnn": rnn}


def torch_precision(dtype: str, flags: TorchFlags, kernels: Iterable[str]) -> str:
    """What a torch model running ``kernels`` on the CUDA device rounds at: the coarsest of them."""
    per = torch_kernel_precisions(dtype, flags)
    return coarsest((per[k] for k in kernels), dtype)


def tensorflow_precision(dtype: str, flags: TensorFlowFlags) -> str:
    """What TensorFlow's float32 kernels round at: TF32 on a GPU with TF32 cores and TF32 execution enabled
    (TensorFlow's default) for matmuls, convolutions and its cuDNN RNN kernels alike."""
    if dtype != "float32" or not flags.gpu:
        return dtype
    return "tf32" if tf32_active(flags.tf32, flags.capability) else dtype


def roundoff_words(precision: str) -> str:
    bits = tolerance.SIGNIFICAND_BITS[precision]
    return f"unit roundoff 2^-{bits} = {tolerance.unit_roundoff(precision):.3g}"


def torch_placement(dtype: str, flags: TorchFlags, kernels: Iterable[str]) -> Placement:
    """torch on its CUDA device (pure: the flags are given)."""
    kernels = [k for k in TORCH_KERNELS if k in set(kernels)]
    per = torch_kernel_precisions(dtype, flags)
    state = ", ".join(f"{KERNEL_WORDS[k]} TF32 {'on' if per[k] == 'tf32' else 'off'}" for k in TORCH_KERNELS)
    if dtype != "float32":
        state = f"TF32 does not apply to {dtype}"
    elif flags.capability is not None and tuple(flags.capability) < TF32_CAPABILITY:
        state += " (no TF32 cores below compute capability 8.0)"
    uses = " and ".join(KERNEL_WORDS[k] for k in kernels) or "no matmul or RNN kernel"
    how = f"{state}{'; ' + flags.read if flags.read else ''}; this model runs {uses}"
    return Placement("torch", flags.where, torch_precision(dtype, flags, kernels), how)


def tensorflow_placement(framework: str, device: str, dtype: str, flags: TensorFlowFlags) -> Placement:
    """Keras (``tensorflow``) on the GPU for ``cuda`` and on the CPU for ``cpu``, where TensorFlow sees a GPU;
    ``tf1`` builds its own tf.Graph, which no outer device scope reaches: TensorFlow's default placement, on the
    GPU whenever TensorFlow sees one."""
    if not flags.gpu:
        return Placement(framework, "cpu", dtype, "TensorFlow sees no GPU; TF32 does not apply on the CPU")
    if device == "cpu" and framework != "tf1":
        return Placement(framework, "cpu", dtype, "--device cpu; TF32 does not apply on the CPU", gpu_visible=True)
    precision = tensorflow_precision(dtype, flags)
    if dtype != "float32":
        state = f"TF32 does not apply to {dtype}"
    else:
        state = (f"TF32 {'on' if precision == 'tf32' else 'off'} "
                 f"(tf.config.experimental.tensor_float_32_execution_enabled() {flags.tf32}"
                 + (", but no TF32 cores below compute capability 8.0)" if flags.tf32 and precision != "tf32" else ")"))
    if framework == "tf1" and device == "cpu":
        state += "; tf1's own tf.Graph takes TensorFlow's default placement, the GPU"
    return Placement(framework, flags.where, precision, state, gpu_visible=True)


def notes(device: str, placements: dict[str, Placement], dtype: str) -> list[str]:
    """The report's lines on the device: none when everything runs on the CPU as asked (as before ``--device``);
    otherwise one per framework: where it runs, its TF32 state and the unit roundoff its allowances use."""
    if device == "cpu" and not any(p.on_gpu for p in placements.values()):
        return []
    lines = []
    for fw, p in placements.items():
        rule = ""
        if p.precision != dtype:
            ratio = tolerance.unit_roundoff(p.precision) / tolerance.unit_roundoff(dtype)
            rtol = tolerance.for_precision(np.ones(1), dtype, p.precision).rtol
            rule = (f"; allowances: the {dtype} rule at {p.precision}'s unit roundoff (x {ratio:g}): rtol {rtol:.3g}, "
                    f"atol at least {rtol:.3g} x the tensor's scale and {tolerance.FLOOR_FACTOR:g} x {ratio:g} x the "
                    f"measured {dtype} noise floor")
        lines.append(f"device {device}: {fw} on {p.where}: {p.how}: {roundoff_words(p.precision)} ({p.precision})"
                     f"{rule}")
    return lines


# ---- reading the live flags (impure; imports a framework only when it is asked about) ----

def torch_problem() -> str | None:
    """Why torch cannot run on ``cuda`` (one line), or None when it sees a CUDA device."""
    import torch
    built = torch.version.cuda is not None and torch.backends.cuda.is_built()
    count = torch.cuda.device_count() if built else 0
    if built and count > 0 and torch.cuda.is_available():
        return None
    why = "built without CUDA" if not built else f"CUDA {torch.version.cuda}, {count} device(s) visible"
    return f"--device cuda: torch sees no CUDA device (torch {torch.__version__}, {why})"


def _fp32_precision(*chain: Any) -> str | None:
    """torch >= 2.9's fp32_precision of the first of ``chain`` (an operator, then its backends) that sets one
    ("none" inherits from the next); "ieee" when none does; None where torch has no such setting."""
    values = [getattr(m, "fp32_precision", None) for m in chain]
    if values[0] is None:
        return None
    return next((v for v in values if v not in (None, "none")), "ieee")


def _legacy(read: Any) -> str:
    try:  # torch raises here where the legacy and new settings were mixed: the new ones decide, say so
        return repr(read())
    except RuntimeError:
        return "unreadable (legacy and new settings mixed)"


def torch_flags() -> TorchFlags:
    """torch's flags for its current CUDA device, as set now."""
    import torch
    b = torch.backends
    matmul = _fp32_precision(b.cuda.matmul, b)
    rnn = _fp32_precision(getattr(b.cudnn, "rnn", None), b.cudnn, b)
    matmul_tf32 = matmul == "tf32" if matmul is not None else bool(b.cuda.matmul.allow_tf32)
    rnn_tf32 = rnn == "tf32" if rnn is not None else bool(b.cudnn.allow_tf32)
    index = torch.cuda.current_device()
    capability = tuple(torch.cuda.get_device_capability(index))
    read = (f"torch.backends.cuda.matmul.fp32_precision {matmul!r} (allow_tf32 "
            f"{_legacy(lambda: b.cuda.matmul.allow_tf32)}, torch.get_float32_matmul_precision() "
            f"{_legacy(torch.get_float32_matmul_precision)}), torch.backends.cudnn.rnn.fp32_precision {rnn!r} "
            f"(torch.backends.cudnn.allow_tf32 {_legacy(lambda: b.cudnn.allow_tf32)}, enabled {b.cudnn.enabled})")
    where = (f"cuda:{index} ({torch.cuda.get_device_name(index)}, compute capability "
             f"{capability[0]}.{capability[1]}, CUDA {torch.version.cuda}, cuDNN {b.cudnn.version()})")
    return TorchFlags(matmul_tf32, rnn_tf32, bool(b.cudnn.enabled and b.cudnn.is_available()),
                      (capability[0], capability[1]), where, read)


def tensorflow_flags() -> TensorFlowFlags:
    """TensorFlow's first GPU, if it sees one, and its TF32 setting."""
    from adapters.tf_import import import_tf
    tf, _ = import_tf()
    gpus = tf.config.list_physical_devices("GPU")
    tf32 = bool(tf.config.experimental.tensor_float_32_execution_enabled())
    if not gpus:
        return TensorFlowFlags(False, tf32, None, "cpu")
    details = tf.config.experimental.get_device_details(gpus[0])
    capability = details.get("compute_capability")
    where = f"GPU:0 ({details.get('device_name', 'a GPU')}" + \
        (f", compute capability {capability[0]}.{capability[1]})" if capability else ")")
    return TensorFlowFlags(True, tf32, tuple(capability) if capability else None, where)


def check(device: str, frameworks: Iterable[str]) -> None:
    """ValueError (one line) for an unknown device, or ``cuda`` where torch (one of ``frameworks``) sees no CUDA
    device, or none of ``frameworks`` could use one: before any work."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; expected one of: {', '.join(DEVICES)}")
    frameworks = tuple(frameworks)
    if device == "cpu":
        return
    if "torch" in frameworks:
        problem = torch_problem()
        if problem:
            raise ValueError(problem)
    elif not (set(frameworks) & {"tensorflow", "tf1"}) or not tensorflow_flags().gpu:
        raise ValueError(f"--device cuda: TensorFlow sees no GPU, and torch is not among the frameworks "
                         f"({', '.join(frameworks)})")


def plan(device: str, frameworks: Iterable[str], dtype: str, spec: Any) -> dict[str, Placement]:
    """Where each framework runs and what it rounds at. On ``cpu`` torch reads no flag (nothing changes on the
    CPU); TensorFlow is asked whether it sees a GPU (a GPU TensorFlow would place Keras and tf1 there)."""
    from adapters import registry
    out: dict[str, Placement] = {}
    for fw in frameworks:
        if fw == "torch":
            if device == "cpu":
                out[fw] = Placement(fw, "cpu", dtype, "")
            else:
                kernels = getattr(registry.get(fw, spec), "kernels", lambda s: TORCH_KERNELS)(spec)
                out[fw] = torch_placement(dtype, torch_flags(), kernels)
        else:
            out[fw] = tensorflow_placement(fw, device, dtype, tensorflow_flags())
    return out


def build_kwargs(framework: str, device: str) -> dict[str, str]:
    """The keyword that places a framework's model on ``device`` at build time: torch's adapters take ``device``;
    on the CPU nothing is passed (their default)."""
    return {"device": device} if framework == "torch" and device != "cpu" else {}


@contextlib.contextmanager
def scope(framework: str, placement: Placement | None) -> Iterator[None]:
    """Keras's ops on the placed device where TensorFlow sees a GPU (it would otherwise take the GPU on --device
    cpu too); nothing elsewhere: torch places its tensors itself, tf1's own graph takes TensorFlow's default."""
    if framework != "tensorflow" or placement is None or not placement.gpu_visible:
        yield
        return
    from adapters.tf_import import import_tf
    tf, _ = import_tf()
    with tf.device("/GPU:0" if placement.on_gpu else "/CPU:0"):
        yield
