"""``compare --device``: TF32 policy and allowances, the refusal without CUDA, placement, and real CUDA runs."""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Iterator

import numpy as np
import pytest
import torch

from verify import cli, device, engine, tolerance, training, zoo
from verify.device import Placement, TensorFlowFlags, TorchFlags

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="torch sees no CUDA device")
H100 = (9, 0)
VOLTA = (7, 0)


def _torch_flags(matmul: bool = False, rnn: bool = True, cudnn: bool = True, capability=H100) -> TorchFlags:
    return TorchFlags(matmul, rnn, cudnn, capability, "cuda:0 (a test GPU)", "")


# ---- the policy: precisions and unit roundoffs ----

def test_unit_roundoffs_are_the_formats_own() -> None:
    assert tolerance.unit_roundoff("float32") == 2.0 ** -24 == np.finfo(np.float32).eps / 2
    assert tolerance.unit_roundoff("float64") == 2.0 ** -53 == np.finfo(np.float64).eps / 2
    assert tolerance.unit_roundoff("tf32") == 2.0 ** -11  # 10 stored mantissa bits


@pytest.mark.parametrize("kernels, matmul, rnn, expected", [
    ({"matmul", "cudnn_rnn"}, False, True, "tf32"),       # torch's defaults: cuDNN TF32 on, cuBLAS off
    ({"matmul"}, False, True, "float32"),                 # no cuDNN RNN kernel: the cuDNN flag does not matter
    ({"matmul"}, True, False, "tf32"),
    ({"matmul", "cudnn_rnn"}, False, False, "float32"),   # both off
    ({"cudnn_rnn"}, True, False, "float32"),
])
def test_torch_precision_is_the_coarsest_of_the_kernels_it_runs(kernels: set, matmul: bool, rnn: bool,
                                                                expected: str) -> None:
    assert device.torch_precision("float32", _torch_flags(matmul, rnn), kernels) == expected


def test_tf32_needs_ampere_and_float32() -> None:
    on = _torch_flags(True, True, capability=VOLTA)
    assert device.torch_kernel_precisions("float32", on) == {"matmul": "float32", "cudnn_rnn": "float32"}
    assert device.torch_kernel_precisions("float64", _torch_flags(True, True)) == {"matmul": "float64",
                                                                                  "cudnn_rnn": "float64"}
    assert device.tensorflow_precision("float64", TensorFlowFlags(True, True, H100)) == "float64"


def test_without_cudnn_torch_rnn_kernels_round_as_its_matmuls() -> None:
    assert device.torch_kernel_precisions("float32", _torch_flags(False, True, cudnn=False))["cudnn_rnn"] == "float32"
    assert device.torch_kernel_precisions("float32", _torch_flags(True, False, cudnn=False))["cudnn_rnn"] == "tf32"


@pytest.mark.parametrize("flags, expected", [
    (TensorFlowFlags(False, True, None), "float32"),      # no GPU: the CPU
    (TensorFlowFlags(True, True, (8, 0)), "tf32"),        # TensorFlow's default on Ampere
    (TensorFlowFlags(True, False, H100), "float32"),
    (TensorFlowFlags(True, True, (7, 5)), "float32"),
])
def test_tensorflow_precision(flags: TensorFlowFlags, expected: str) -> None:
    assert device.tensorflow_precision("float32", flags) == expected


def test_tensorflow_placement_follows_the_device_but_tf1_takes_the_gpu() -> None:
    gpu = TensorFlowFlags(True, True, H100, "GPU:0 (a test GPU)")
    assert device.tensorflow_placement("tensorflow", "cuda", "float32", gpu).precision == "tf32"
    keras_cpu = device.tensorflow_placement("tensorflow", "cpu", "float32", gpu)
    assert (keras_cpu.where, keras_cpu.precision, keras_cpu.gpu_visible) == ("cpu", "float32", True)
    tf1 = device.tensorflow_placement("tf1", "cpu", "float32", gpu)
    assert tf1.on_gpu and tf1.precision == "tf32" and "default placement" in tf1.how
    none = device.tensorflow_placement("tensorflow", "cuda", "float32", TensorFlowFlags(False, True, None))
    assert not none.on_gpu and none.precision == "float32"


# ---- the allowance derived from the unit roundoff ----

def test_tf32_allowance_is_the_float32_rule_scaled_by_the_unit_roundoffs() -> None:
    ref = np.array([[0.5, -2.0], [1.0, 0.25]])
    ratio = 2.0 ** 13
    f32, t32 = tolerance.for_tensor(ref, "float32"), tolerance.for_precision(ref, "float32", "tf32")
    assert t32.rtol == 64 * 2.0 ** -10 == f32.rtol * ratio
    assert t32.atol == 64 * 2.0 ** -10 * 2.0 == f32.atol * ratio  # scale: the largest |value|, 2
    assert t32.rule == tolerance.RULES["tf32"]
    # a measured float32 floor is scaled the same way, and wins where it is larger
    floor = 1e-4
    assert tolerance.for_precision(ref, "float32", "tf32", floor).atol == 8 * ratio * floor
    assert tolerance.for_tensor(ref, "float32", floor, precision="tf32") == \
        tolerance.for_precision(ref, "float32", "tf32", floor)
    # the same precision as the dtype is the dtype's own rule
    assert tolerance.for_tensor(ref, "float32", precision="float32") == f32
    assert tolerance.for_trained(ref, "float32", 1e-5, "tf32").atol == 8 * ratio * 1e-5  # above 64 x 2^-10 x 2


def test_float64_has_no_tf32_rule() -> None:
    with pytest.raises(ValueError, match="TF32 applies to float32 kernels only"):
        tolerance.for_precision(np.ones(2), "float64", "tf32")


def test_an_error_tf32_explains_fails_the_float32_rule() -> None:
    """4e-4 relative (the cuDNN LSTM measured with TF32 on): within the TF32 allowance, far outside float32's."""
    from verify.compare import compare_tensor
    ref = np.linspace(-1, 1, 50)
    got = ref * (1 + 4e-4)
    assert compare_tensor("torch", "reference", "output", "y", got, ref,
                          tolerance.for_precision(ref, "float32", "tf32"), "float32").ok
    assert not compare_tensor("torch", "reference", "output", "y", got, ref, tolerance.for_tensor(ref, "float32"),
                              "float32").ok


# ---- the notes ----

def test_notes_state_device_tf32_and_unit_roundoff() -> None:
    on = device.torch_placement("float32", _torch_flags(False, True), {"matmul", "cudnn_rnn"})
    tf_cpu = device.tensorflow_placement("tensorflow", "cuda", "float32", TensorFlowFlags(False, True, None))
    lines = device.notes("cuda", {"torch": on, "tensorflow": tf_cpu}, "float32")
    assert len(lines) == 2
    assert lines[0].startswith("device cuda: torch on cuda:0 (a test GPU): cuBLAS matmul TF32 off, cuDNN RNN TF32 on")
    assert "unit roundoff 2^-11" in lines[0] and "(tf32)" in lines[0] and "rtol 0.0625" in lines[0]
    assert lines[1].startswith("device cuda: tensorflow on cpu: TensorFlow sees no GPU")
    assert "unit roundoff 2^-24" in lines[1] and "allowances" not in lines[1]
    off = device.torch_placement("float32", _torch_flags(False, False), {"matmul", "cudnn_rnn"})
    assert "TF32 off, cuDNN RNN TF32 off" in device.notes("cuda", {"torch": off}, "float32")[0]
    f64 = device.torch_placement("float64", _torch_flags(True, True), {"matmul", "cudnn_rnn"})
    assert "TF32 does not apply to float64" in device.notes("cuda", {"torch": f64}, "float64")[0]


def test_no_notes_when_everything_runs_on_the_cpu_as_asked() -> None:
    assert device.notes("cpu", {"torch": Placement("torch", "cpu", "float32")}, "float32") == []


def test_torch_fp32_precision_settings_are_read_with_inheritance() -> None:
    """The flags torch sets globally, on any build: cuBLAS off by default, cuDNN's RNN on; set and restored."""
    b = torch.backends
    if device._fp32_precision(b.cuda.matmul, b) is None:
        pytest.skip("this torch has no fp32_precision settings")
    saved = b.cuda.matmul.fp32_precision, b.cudnn.rnn.fp32_precision
    try:
        b.cuda.matmul.fp32_precision, b.cudnn.rnn.fp32_precision = "none", "tf32"
        assert device._fp32_precision(b.cuda.matmul, b) == "ieee"  # inherited to the end: IEEE float32
        assert device._fp32_precision(b.cudnn.rnn, b.cudnn, b) == "tf32"
        b.cuda.matmul.fp32_precision, b.cudnn.rnn.fp32_precision = "tf32", "ieee"
        assert device._fp32_precision(b.cuda.matmul, b) == "tf32"
        assert device._fp32_precision(b.cudnn.rnn, b.cudnn, b) == "ieee"
    finally:
        b.cuda.matmul.fp32_precision, b.cudnn.rnn.fp32_precision = saved


# ---- without a CUDA device ----

@pytest.mark.skipif(CUDA, reason="torch sees a CUDA device")
def test_cli_without_cuda_exits_2_with_one_line(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["compare", "--model", "lstm", "--device", "cuda", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --device cuda: torch sees no CUDA device (torch "), err


@pytest.mark.skipif(CUDA, reason="torch sees a CUDA device")
def test_api_without_cuda_refuses_before_any_work() -> None:
    with pytest.raises(ValueError, match="torch sees no CUDA device"):
        engine.compare_model("lstm", ("torch",), "float32", 0, device="cuda")


@pytest.mark.parametrize("args", [("--all",), ("--keras", "m.keras", "--torch", "w.pt"), ("--model", "sum",
                                                                                        "--reproduce")])
def test_cli_device_cuda_applies_to_one_model(capsys: pytest.CaptureFixture, args: tuple) -> None:
    assert cli.main(["compare", *args, "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--device cuda applies to one --model" in err[0], err


@pytest.mark.skipif(torch.backends.cuda.is_built(), reason="this torch is built with CUDA")
def test_a_faked_is_available_neither_moves_a_cpu_run_nor_confuses_cuda(monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: pytest.CaptureFixture) -> None:
    """``torch.cuda.is_available`` faked on the CPU build: --device cpu still runs on the CPU, unchanged, and
    --device cuda is still the one-line refusal, not a traceback from inside torch."""
    before = engine.compare_model("lstm", ("torch",), "float32", 0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    after = engine.compare_model("lstm", ("torch",), "float32", 0, device="cpu")
    assert after.verdict == "equivalent" and after.notes == before.notes
    assert [c.max_abs for c in after.checks] == [c.max_abs for c in before.checks]
    assert cli.main(["compare", "--model", "lstm", "--frameworks", "torch", "--device", "cuda", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "built without CUDA" in err[0], err


# ---- placement, on the meta device (shapes, no data): a tensor made on the CPU instead raises ----

def _data(name: str) -> tuple:
    """A zoo model's spec, weights and batches (two training batches of 4 and a held-out one, if trained)."""
    from reference.params import init_params
    entry = zoo.get(name)
    rng = np.random.default_rng(0)
    if entry.train is None:
        return entry.spec, init_params(entry.spec, rng), [entry.make_batch(entry.spec, rng)]
    params = entry.train.init(entry.spec, rng) if entry.train.init else init_params(entry.spec, rng)
    batches, test = entry.train.make_data(entry.spec, rng, 2, 4, 4)
    return entry.spec, params, batches + [test]


def _devices(value: object) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(_devices(v) for v in value.values())) if value else set()
    return {value.device.type} if isinstance(value, torch.Tensor) else set()


@pytest.mark.parametrize("name", ["lstm", "gru_reset_before", "bidirectional_stacked_hard", "lm", "attention",
                                  "bidirectional_classifier"])
def test_every_tensor_of_a_run_is_on_the_models_device(name: str) -> None:
    from adapters import registry
    spec, params, batches = _data(name)
    adapter = registry.get("torch", spec)
    model = adapter.build(spec, params, "float32", device="meta")
    assert {p.device.type for p in model.parameters()} == {"meta"}
    tensors = adapter.forward_backward(model, spec, batches[-1], "float32")
    assert _devices(tensors) == {"meta"}
    assert {p.grad.device.type for p in model.parameters() if p.grad is not None} == {"meta"}


@pytest.mark.parametrize("name", ["lm", "attention"])
def test_training_runs_on_the_models_device(name: str) -> None:
    """Forward, backward and the optimiser's step on the meta device, up to the first loss read back as a number
    (which a meta tensor does not have): a tensor made on the CPU would raise a device mismatch first."""
    from adapters import registry
    spec, params, batches = _data(name)
    adapter = registry.get("torch", spec)
    model = adapter.build(spec, params, "float32", device="meta")
    with pytest.raises(RuntimeError, match=r"item\(\) cannot be called on meta tensors"):
        adapter.train(model, spec, batches[:-1], 0.1, "float32")


def _faked(precision: str):
    def plan(dev: str, frameworks, dtype: str, spec) -> dict[str, Placement]:
        return {fw: Placement(fw, "cpu", precision, "faked for the test") for fw in frameworks}
    return plan


def test_the_engine_checks_a_tf32_framework_at_tf32(monkeypatch: pytest.MonkeyPatch) -> None:
    """The placement's precision reaches every check against the reference (built weights stay exact)."""
    monkeypatch.setattr(device, "plan", _faked("tf32"))
    report = engine.compare_model("lstm", ("torch",), "float32", 0)
    against_ref = [c for c in report.checks if c.against == "reference"]
    assert against_ref and all(c.allowed.rule == tolerance.RULES["tf32"] for c in against_ref
                               if c.quantity != "accuracy")
    assert all(c.allowed.rtol == 64 * 2.0 ** -10 for c in against_ref if c.quantity != "accuracy")
    assert all(c.allowed.atol == 0 for c in report.checks if c.quantity == "parameter")


def test_training_checks_a_tf32_framework_at_tf32(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "plan", _faked("tf32"))
    entry = zoo.get("sum")
    report = training.compare_trained("sum", entry.spec, entry.train, ("torch",), "float32", 0, steps=3)
    by = {(c.against, c.quantity, c.name): c for c in report.checks}
    trained = [c for k, c in by.items() if k[1] == "trained parameter"]
    held_out = [c for k, c in by.items() if k[0] == "reference" and k[1] in ("output", "gradient")]
    assert trained and all(c.allowed.rtol == 64 * 2.0 ** -10 for c in trained)
    assert held_out and all(c.allowed.rule == tolerance.RULES["tf32"] for c in held_out)
    monkeypatch.setattr(device, "plan", _faked("float32"))
    base = training.compare_trained("sum", entry.spec, entry.train, ("torch",), "float32", 0, steps=3)
    steps = {c.name: c.allowed.atol for c in base.checks if c.quantity == "training step"}
    # the gradient rule at TF32 widens each step's allowance by the ratio of the unit roundoffs, to first order
    for c in report.checks:
        if c.quantity == "training step" and c.name != "loss" and steps[c.name] > 0:
            assert c.allowed.atol > 100 * steps[c.name], (c.name, c.allowed.atol, steps[c.name])


# ---- on a real CUDA device ----

@contextlib.contextmanager
def _tf32(on: bool) -> Iterator[None]:
    b = torch.backends
    saved = b.cuda.matmul.fp32_precision, b.cudnn.rnn.fp32_precision
    value = "tf32" if on else "ieee"
    b.cuda.matmul.fp32_precision, b.cudnn.rnn.fp32_precision = value, value
    try:
        yield
    finally:
        b.cuda.matmul.fp32_precision, b.cudnn.rnn.fp32_precision = saved


@needs_cuda
@pytest.mark.parametrize("on", [False, True])
def test_lstm_on_cuda_is_equivalent_under_the_derived_allowance(on: bool) -> None:
    with _tf32(on):
        report = engine.compare_model("lstm", ("torch",), "float32", 0, device="cuda")
    note = next(n for n in report.notes if n.startswith("device cuda: torch on cuda:"))
    ampere = torch.cuda.get_device_capability() >= (8, 0)
    assert f"cuDNN RNN TF32 {'on' if on and ampere else 'off'}" in note, note
    assert ("unit roundoff 2^-11" if on and ampere else "unit roundoff 2^-24") in note, note
    assert report.verdict == "equivalent", [dataclasses.asdict(c) for c in report.checks if not c.ok]
    worst = max(c.norm_rel for c in report.checks if c.against == "reference" and c.quantity == "output")
    print(f"TF32 {'on' if on else 'off'}: worst output normwise error {worst:.3g}")


@needs_cuda
def test_float64_on_cuda_keeps_the_float64_rule() -> None:
    with _tf32(True):
        report = engine.compare_model("lstm", ("torch",), "float64", 0, device="cuda")
    assert report.verdict == "equivalent", [c for c in report.checks if not c.ok]
    assert "TF32 does not apply to float64" in " ".join(report.notes)
    assert all(c.allowed.rule == tolerance.RULES["float64"] for c in report.checks
               if c.against == "reference" and c.quantity in ("output", "gradient"))


@needs_cuda
def test_a_trained_model_on_cuda() -> None:
    entry = zoo.get("attention")
    report = training.compare_trained("attention", entry.spec, entry.train, ("torch",), "float32", 0, steps=5,
                                      device="cuda")
    assert report.verdict == "equivalent", [c for c in report.checks if not c.ok]
    assert any(n.startswith("device cuda: torch on cuda:") for n in report.notes)


@needs_cuda
def test_cli_compare_on_cuda(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["compare", "--model", "lstm", "--frameworks", "torch", "--device", "cuda", "--quiet"]) == 0
    assert "device cuda: torch on cuda:" in capsys.readouterr().out
