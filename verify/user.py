"""Users' own models: a Keras file, a torch state_dict or nn.Module, a TF1 checkpoint, each read into the
description and the canonical weights, then verified by the same engine and policy as the zoo.

Data flow: a loader (the only code that opens a user's file, ``adapters.readers`` and
``adapters.tf1_checkpoint``) -> ``Side`` (canonical weights, a way to run the framework, each tensor's
own name) -> parameter checks with diagnoses -> the reference on the architecture's weights -> the
same per-tensor checks as ``compare --model`` -> a ``Report``.
"""
from __future__ import annotations

import importlib
import os
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np

from adapters.errors import BadInput
from reference import stack
from reference.layers import Embedding, Masking, Recurrent
from reference.spec import Batch
from reference.stack import StackSpec
from verify import engine, hypotheses, stage, tolerance, weights
from verify.compare import Results, compare_results
from verify.odd_one_out import odd_one_out
from verify.report import Check, Report

STEPS, BATCH = 6, 4


@dataclass(frozen=True)
class Side:
    """One framework's model as the user gave it."""

    framework: str                                  # tensorflow, torch, tf1
    label: str                                      # the file or module the user named
    params: dict[str, np.ndarray]                   # its weights, canonical, float64
    run: Callable[[Batch, str], Results]            # its own results on a batch, in a dtype
    tensor_name: dict[str, str] = field(default_factory=dict)   # canonical -> its own tensor name
    layer_name: dict[str, str] = field(default_factory=dict)    # canonical layer -> its own layer / module
    notes: tuple[str, ...] = ()
    model: Any = None                               # the framework model (for ``port``)
    steps: int | None = None                        # the input length the file fixes, where no model says it
    # reference activation -> the one this side computes instead: a Keras 2 file rebuilt by Keras 3 runs Keras 3's
    # hard_sigmoid for the file's name ({"hard_sigmoid_keras2": "hard_sigmoid"}); snapshot records it
    activations: dict[str, str] = field(default_factory=dict)


def _keras_names(spec: StackSpec) -> dict[str, str]:
    """Canonical parameter -> the Keras weight holding it ("Keras bidirectional (backward).kernel")."""
    out = {}
    for name in stack.param_shapes(spec):
        layer_name = stack.layer_of(spec, name)
        layer = next(l for l in spec.layers if l.name == layer_name)
        suffix = name.rsplit("/", 1)[-1]
        if isinstance(layer, Recurrent):
            direction = name[len(layer_name) + 1:].split("/")[0]
            where = f"{layer_name} ({'forward' if direction == 'fw' else 'backward'})" if layer.bidirectional \
                else layer_name
            gru_rows = layer.cell == "gru" and layer.reset_after
            suffix = {"bias": "bias[0]" if gru_rows else "bias", "recurrent_bias": "bias[1]"}.get(suffix, suffix)
            out[name] = f"Keras {where}.{suffix}"
        else:
            out[name] = f"Keras {layer_name}.{suffix}"
    return out


def load_keras(path: str, dtype: str) -> tuple[StackSpec, Side]:
    """The description and weights of a Keras file, and how to run it (float64: rebuilt in float64)."""
    from adapters import keras3, readers
    if readers.screen_keras_file(path)["keras2"]:  # Keras 3 cannot load it: read without Keras, then rebuilt
        return keras2_side(path, dtype)
    keras3._activation("hard_sigmoid_keras2")  # registered, so that models this tool wrote with it load back
    return keras_side(readers.load_keras_model(path), path, dtype)


def keras2_side(path: str, dtype: str) -> tuple[StackSpec, Side]:
    """A Keras 2 .h5 read with h5py (adapters/keras2_h5.py): the description keeps Keras 2's definitions (the
    reference runs them); the tensorflow side is the installed Keras rebuilt from it with the file's weights,
    computing what that Keras computes for the same layer names (Keras 3's hard_sigmoid differs from Keras 2's;
    under Keras 2 itself the names mean what they meant when the file was saved)."""
    from adapters import keras2_h5, keras_compat, keras_stack
    read = keras2_h5.read(path)
    is_keras3 = keras_compat.major() >= 3
    renames = dict(keras2_h5.KERAS3_NAMES) if is_keras3 else {}
    rebuilt = keras2_h5.renamed(read.spec, renames)
    model = keras_stack.build(rebuilt, read.params, "float32")

    def run(batch: Batch, dt: str) -> Results:
        built = model if dt == "float32" else keras_stack.build(rebuilt, read.params, dt)
        return keras_stack.run(built, rebuilt, batch, dt)
    versions = keras_stack.versions()
    notes = (f"{os.path.basename(path)} was saved by Keras {read.keras_version}, which Keras 3 cannot load: read with "
             f"h5py; the tensorflow side is Keras {versions['keras']} rebuilt from its config with its weights, the "
             "reference computes Keras 2's definitions",)
    hard = keras2_h5.hard_sigmoid_note(read, is_keras3)
    notes += (hard,) if hard else ()
    used = {n for l in read.spec.recurrent_layers for n in (l.activation, l.recurrent_activation)}
    return read.spec, Side("tensorflow", path, read.params, run, read.tensor_name,
                           {l.name: f"keras {l.name}" for l in read.spec.layers}, notes, model, read.steps,
                           {a: b for a, b in renames.items() if a in used})


def keras_side(model: Any, label: str, dtype: str) -> tuple[StackSpec, Side]:
    """A loaded Keras model's description and weights, and how to run it (float64: rebuilt in float64)."""
    from adapters import keras_stack
    spec = keras_stack.describe(model, os.path.basename(label))
    params = keras_stack.extract(model, spec)
    stack.check_params(spec, params)

    def run(batch: Batch, dt: str) -> Results:
        built = model if dt == "float32" else keras_stack.build(spec, params, dt)
        return keras_stack.run(built, spec, batch, dt)
    notes = ("float64: Keras runs a float64 copy of the file's model (same layers, same weights)",) \
        if dtype == "float64" else ()
    return spec, Side("tensorflow", label, params, run, _keras_names(spec),
                      {l.name: f"keras {l.name}" for l in spec.layers}, notes, model)


def _torch_layer_names(groups: list) -> dict[str, str]:
    out = {}
    for g in groups:
        for k, layer in enumerate(g.layers):
            out[layer] = f"torch {g.module or '(top)'}" + (f" layer {k} of {len(g.layers)}" if len(g.layers) > 1 else "")
    return out


def load_torch(spec: StackSpec, path: str, dtype: str) -> Side:
    """A torch state_dict or safetensors file matched to the description's layers, loaded into torch modules."""
    from adapters import readers, torch_stack
    tensors = readers.read_torch_weights(path)
    model = torch_stack.from_state_dict(spec, tensors, dtype, source=path)
    params = torch_stack.extract(model)

    def run(batch: Batch, dt: str) -> Results:
        m = model if dt == dtype else torch_stack.from_state_dict(spec, tensors, dt, source=path)
        return torch_stack.run(m, spec, batch, dt)
    return Side("torch", path, params, run, {k: f"torch {v}" for k, v in
                                             torch_stack.tensor_names(spec, model.groups).items()},
                _torch_layer_names(model.groups), (), model)


def import_factory(target: str) -> Callable[[], Any]:
    """``package.module:factory`` -> the factory (this imports the user's module: the one path that runs
    user code, because the user named it on the command line)."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ValueError(f"--torch-module {target!r}: expected package.module:factory")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"--torch-module {target!r}: cannot import {module_name}: {e}") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ValueError(f"--torch-module {target!r}: {module_name} has no callable {attr}")
    return factory


def load_torch_module(spec: StackSpec, target: str, weights_path: str | None, dtype: str) -> Side:
    """The user's own nn.Module (factory called with no arguments), with the weights file loaded into it."""
    import torch

    from adapters import readers
    module = import_factory(target)()
    if not isinstance(module, torch.nn.Module):
        raise ValueError(f"--torch-module {target!r}: the factory returned {type(module).__name__}, not an nn.Module")
    label = target
    if weights_path:
        tensors = readers.read_torch_weights(weights_path)
        try:
            module.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in tensors.items()})
        except RuntimeError as e:
            first = str(e).strip().splitlines()
            raise ValueError(f"{weights_path}: does not load into {target}: "
                             f"{' '.join(l.strip() for l in first[:3])}") from None
        label = f"{target} with {weights_path}"
    return module_side(spec, module, label)


def module_side(spec: StackSpec, module: Any, label: str) -> Side:
    """A user's nn.Module, its parameters matched to the description's layers, run through its own forward."""
    from adapters import torch_stack
    state = {k: v.detach().double().numpy() for k, v in module.state_dict().items()}
    groups = torch_stack.match_groups(spec, state, label)
    params = torch_stack.canonical(spec, groups, torch_stack.by_owner(state))
    stack.check_params(spec, params)

    def run(batch: Batch, dt: str) -> Results:
        try:
            return torch_stack.run_module(module, spec, groups, batch, dt)
        except (RuntimeError, TypeError, IndexError) as e:  # the user's forward cannot take these inputs
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise BadInput(f"{label}: forward(x) raised {type(e).__name__} on inputs of shape "
                             f"{batch.inputs.shape}: {first}") from None
    note = (f"torch: {label}: its own forward(x) is run: its prediction, loss, accuracy and gradients are checked; "
            "its inner outputs and states are not visible")
    return Side("torch", label, params, run, {k: f"torch {v}" for k, v in torch_stack.tensor_names(spec, groups).items()},
                _torch_layer_names(groups), (note,), module)


def load_tf1(prefix: str, forget_bias: float, activation: str, return_sequences: bool = True
             ) -> tuple[StackSpec, Side]:
    """A TF1 checkpoint's description and weights; run by the TF1 graph cells it was made of."""
    from adapters import tf1_cells, tf1_checkpoint
    variables = tf1_checkpoint.read_checkpoint(prefix)
    spec, params, sources = tf1_checkpoint.describe(variables, forget_bias=forget_bias, activation=activation,
                                                    return_sequences=return_sequences,
                                                    name=os.path.basename(prefix))
    seq = tf1_checkpoint.as_sequence_spec(spec)

    def run(batch: Batch, dt: str) -> Results:  # the TF1 cells themselves, forget_bias added at run time
        if seq is None:
            raise BadInput(f"{prefix}: its layers cannot be run as one TF1 cell stack")
        results = tf1_cells.run(tf1_cells.build(seq, params, dt), seq, batch, dt)
        if "hidden" in results["output"]:  # the top layer's sequence, by its layer name as the stack names it
            results["output"][spec.recurrent_layers[-1].name] = results["output"].pop("hidden")
        return results
    folded_spec, folded = fold_forget_bias(spec, params)
    notes = (f"TF1 forget_bias {forget_bias:g} is folded into the forget-gate bias for the reference and for the "
             "frameworks that have no run-time forget_bias (rounded once in float32)",) \
        if folded_spec != spec else ()
    return folded_spec, Side("tf1", prefix, folded, run, {k: f"TF1 {v}" for k, v in sources.items()},
                             {l.name: f"tf1 {l.name}" for l in spec.layers}, notes)


def fold_forget_bias(spec: StackSpec, params: dict[str, np.ndarray], stored: str = "float32"
                     ) -> tuple[StackSpec, dict[str, np.ndarray]]:
    """TF1's run-time forget_bias moved into the stored forget-gate bias block (what a port to Keras or torch,
    which have no such option, must hold); the sum is rounded to ``stored`` as the port will store it."""
    layers, out = [], dict(params)
    for layer in spec.layers:
        if isinstance(layer, Recurrent) and layer.forget_bias:
            h = layer.hidden_size
            for d in layer.directions:
                bias = out[f"{layer.name}/{d}/bias"].copy()
                block = bias[h:2 * h].astype(stored) + np.asarray(layer.forget_bias, stored)  # gate f: i, f, g, o
                bias[h:2 * h] = block.astype(np.float64)
                out[f"{layer.name}/{d}/bias"] = bias
            layer = replace(layer, forget_bias=0.0)
        layers.append(layer)
    return replace(spec, layers=tuple(layers)), out


def steps_of(side: Side) -> int:
    """The number of steps a Keras model's input signature fixes, else ``STEPS``."""
    if side.steps:
        return side.steps
    shape = getattr(side.model, "input_shape", None) if side.framework == "tensorflow" else None
    steps = shape[1] if isinstance(shape, tuple) and len(shape) > 1 else None
    return steps if isinstance(steps, int) and steps > 0 else STEPS


def draw_batch(spec: StackSpec, seed: int, steps: int = STEPS, batch: int = BATCH) -> Batch:
    """Inputs as the model's input signature takes them (ids below the vocabulary size for an Embedding;
    trailing padding for Masking or mask_zero so that masks are exercised), targets for its loss."""
    rng = np.random.default_rng(seed)
    first = spec.layers[0]
    if isinstance(first, Embedding):
        low = 1 if first.mask_zero else 0
        x = rng.integers(low, first.input_dim, size=(batch, steps))
        if first.mask_zero:
            x[1, steps - 2:], x[2, steps - 1:] = 0, 0
    else:
        x = rng.uniform(-1.0, 1.0, size=(batch, steps, spec.input_size))
        if isinstance(first, Masking):
            x[1, steps - 2:], x[2, steps - 1:] = first.mask_value, first.mask_value
    return Batch(x, draw_targets(spec, rng, batch, steps))


def draw_targets(spec: StackSpec, rng: np.random.Generator, batch: int, steps: int) -> np.ndarray:
    lead = (batch, steps) if spec.return_sequences else (batch,)
    if spec.loss in ("prob_ce", "softmax_ce"):
        return rng.integers(0, spec.output_size, size=lead)
    if spec.loss == "clipped_log_ce":
        return np.eye(spec.output_size)[rng.integers(0, spec.output_size, size=lead)]
    return rng.uniform(-1.0, 1.0, size=lead + (spec.output_size,))


def with_targets(spec: StackSpec, targets: np.ndarray) -> StackSpec:
    """The loss the targets call for: class ids -> cross-entropy (on probabilities after a softmax
    output, on logits otherwise); floats -> mean squared error."""
    if np.issubdtype(targets.dtype, np.integer):
        softmax = getattr(spec.layers[-1], "activation", "") == "softmax"
        return replace(spec, loss="prob_ce" if softmax else "softmax_ce", accuracy="argmax")
    return replace(spec, loss="mse", accuracy="abs_tol")


def user_batch(spec: StackSpec, inputs: np.ndarray | None, targets: np.ndarray | None, seed: int,
               steps: int = STEPS) -> tuple[StackSpec, Batch, str]:
    """The batch to verify on, the spec with the loss the targets call for, and a note saying where both came from."""
    if targets is not None and inputs is None:
        raise ValueError("--targets needs --inputs (targets belong to given inputs)")
    if inputs is None:
        batch = draw_batch(spec, seed, steps)
        source = f"inputs drawn from seed {seed}: {batch.inputs.shape}"
    else:
        stack.check_inputs(spec, inputs)
        rng = np.random.default_rng(seed)
        batch = Batch(inputs, draw_targets(spec, rng, inputs.shape[0], inputs.shape[1]))
        source = f"inputs from the user's file: {inputs.shape}"
    if targets is not None:
        spec = with_targets(spec, targets)
        want = (inputs.shape[0], inputs.shape[1]) if spec.return_sequences else (inputs.shape[0],)
        if spec.loss == "mse":
            want = want + (spec.output_size,)
        if tuple(targets.shape) != want:
            raise ValueError(f"--targets: expected shape {want} for this model's prediction and --inputs, "
                             f"got {tuple(targets.shape)}")
        if spec.loss != "mse" and (targets.min() < 0 or targets.max() >= spec.output_size):
            raise ValueError(f"--targets: class ids must lie in 0..{spec.output_size - 1}, "
                             f"got {targets.min()}..{targets.max()}")
        batch = Batch(batch.inputs, targets.astype(np.float64) if spec.loss == "mse" else targets)
        source += "; targets from the user's file"
    loss = {"mse": "mean squared error", "prob_ce": "cross-entropy of the softmax output's probabilities",
            "softmax_ce": "softmax cross-entropy of the output logits",
            "clipped_log_ce": "the article's clipped log loss"}[spec.loss]
    return spec, batch, f"{source}; loss: {loss} ({spec.loss}), accuracy: {spec.accuracy}; initial states zero"


def _restrict(results: Results, keep: Results) -> Results:
    return {q: {n: v for n, v in results[q].items() if n in keep.get(q, {})} for q in results if q in keep}


def _label(spec: StackSpec, sides: list[Side], check: Check) -> Check:
    layer = stack.layer_of(spec, check.name)
    if layer is None:
        return check
    names = [s.layer_name.get(layer) for s in sides if s.framework in check.framework.split("~")
             or s.framework == check.against]
    return replace(check, layer=" / ".join(dict.fromkeys(n for n in names if n)) or None)


def diagnose_side(spec: StackSpec, side: Side, primary: Side, batch: Batch, dtype: str, results: Results,
                  checks: list[Check], ref: Results, allow: dict, label: str | None = None
                  ) -> tuple[list[Check], list[str]]:
    """Why a side's results fail against the reference (on the first side's weights). When its own weights
    differ and the reference on them reproduces its results, its weights are the whole story (their
    parameter checks name the bug); otherwise the known porting bugs are tried on the reference on the
    weights read back from it (verify/hypotheses.py). ``label`` names the side in the notes."""
    who = label or side.framework
    params = side.params
    try:
        stack.check_params(spec, params)
    except ValueError:
        params = primary.params  # its weights do not fit the description: its parameter checks say how
    run = engine.FrameworkRun(side.framework, params, results)
    if params is not primary.params:
        case = hypotheses.full_case(spec, params, engine.seen_by(batch, dtype))
        own = hypotheses.Injected(case)
        if hypotheses.reproduces(case, own, results, hypotheses.reported(results, lambda q, n: allow[(q, n)]),
                                 lambda q, n: allow[(q, n)]) <= 1.0:
            text = (f"{who} computes what the reference computes on the weights read back from it: its results "
                    f"differ because its weights differ from {primary.framework}'s (see its parameter checks)")
            return [replace(c, diagnosis=text) if hypotheses.needs_diagnosis(c, side.framework) else c
                    for c in checks], [text]
    return engine.diagnose_run(spec, batch, dtype, run, checks, ref, allow, label)


def compare_sides(spec: StackSpec, sides: list[Side], batch: Batch, dtype: str, seed: int, notes: tuple[str, ...],
                  progress: Callable[[str], None] = lambda s: None) -> Report:
    """Weights of every side against the first (the architecture's file), then each side's results against
    the reference run on the first side's weights, then each pair of sides."""
    if dtype not in engine.DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of: {', '.join(engine.DTYPES)}")
    primary = sides[0]
    timings: dict[str, float] = {}
    checks: list[Check] = []
    for side in sides[1:]:
        def namer(name: str, side: Side = side) -> tuple[str, str]:
            return side.tensor_name.get(name, name), primary.tensor_name.get(name, name)
        checks += weights.compare_params(side.params, primary.params, side.framework, primary.framework, "float32",
                                         lambda n: stack.gate_blocks(spec, n), namer)
    t = time.perf_counter()
    with stage.phase("reference"):
        ref, allow = engine.reference_and_allowances(spec, primary.params, batch, dtype)
    timings["reference"] = time.perf_counter() - t
    time_axis, gates = engine._locators(spec)
    produced: list[tuple[Side, Results]] = []
    unseen: list[str] = []
    diagnosed: list[str] = []
    for side in sides:
        progress(f"{side.framework}: running {side.label} ({dtype})")
        t = time.perf_counter()
        with stage.phase("running", side.framework):
            results = side.run(batch, dtype)
        timings[f"{side.framework}: run"] = time.perf_counter() - t
        mine = _restrict(ref, results)
        unseen += [f"{side.framework} {q}/{n}" for q in ref for n in ref[q] if n not in mine.get(q, {})]
        side_checks = compare_results(side.framework, "reference", _restrict(results, mine), mine,
                                      lambda q, n: allow[(q, n)], dtype, time_axis, gates)
        if any(hypotheses.needs_diagnosis(c, side.framework) for c in side_checks):
            progress(f"{side.framework}: trying the known porting bugs on the reference")
            t = time.perf_counter()
            with stage.phase("diagnosing", side.framework):
                shared = sum(s.framework == side.framework for s in sides) > 1  # --torch and --torch-module
                side_checks, found = diagnose_side(spec, side, primary, batch, dtype, _restrict(results, mine),
                                                   side_checks, ref, allow,
                                                   f"{side.framework} {side.label}" if shared else None)
            timings[f"{side.framework}: diagnosis"] = time.perf_counter() - t
            diagnosed += found
        checks += side_checks
        produced.append((side, results))
    for i in range(len(produced)):
        for j in range(i + 1, len(produced)):
            (a, ra), (b, rb) = produced[i], produced[j]
            common = _restrict(_restrict(rb, ra), ref)
            checks += compare_results(f"{a.framework}~{b.framework}", b.framework, _restrict(ra, common), common,
                                      lambda q, n: tolerance.combined(allow[(q, n)], allow[(q, n)]), dtype,
                                      time_axis, gates)
    checks = [_label(spec, sides, c) for c in checks]
    extra = tuple(n for s in sides for n in s.notes) + tuple(diagnosed) + tuple(odd_one_out(checks))
    if unseen:
        extra += (f"not produced, so not checked: {', '.join(unseen[:8])}" + (" ..." if len(unseen) > 8 else ""),)
    versions = {"python": engine.platform.python_version(), "numpy": np.__version__}
    from adapters import registry
    for side in sides:
        versions.update(registry.versions_of(side.framework))
    layers = "; ".join(f"{type(l).__name__} {l.name}" for l in spec.layers)
    vs = " vs ".join(f"{s.framework} {s.label}" for s in sides)
    return Report(spec.name, dtype, seed, tuple(s.framework for s in sides), versions, tuple(checks),
                  (f"{vs}", f"layers: {layers}") + notes + extra, timings)


def load_sides(keras: str | None, torch: str | None, torch_module: str | None, tf1_checkpoint: str | None,
               forget_bias: float, activation: str, dtype: str, x: np.ndarray | None, y: np.ndarray | None,
               seed: int, progress: Callable[[str], None]) -> tuple[Any, list[Side], Batch, str]:
    """The files read as ``compare`` reads them: (the description, each file's side, the batch, its note). The
    Keras file or TF1 checkpoint gives the architecture; the torch file or module is the second side."""
    progress("reading the files")
    if keras:
        spec, first = load_keras(keras, dtype)
    elif tf1_checkpoint:
        spec, first = load_tf1(tf1_checkpoint, forget_bias, activation)
    else:
        raise BadInput("give the architecture: --keras MODEL.keras or --tf1-checkpoint PREFIX")
    sides = [first]
    if torch_module:
        sides.append(load_torch_module(spec, torch_module, torch, dtype))
    elif torch:
        sides.append(load_torch(spec, torch, dtype))
    spec, batch, note = user_batch(spec, x, y, seed, steps_of(first))
    return spec, sides, batch, note
