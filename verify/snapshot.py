"""Framework-upgrade snapshots: everything a model computes, written to DIR (format_version 1) and read back safely."""
from __future__ import annotations

# What is recorded: the inputs, the weights, every framework's results, the reference's, the policy and the
# environment, as DIR/snapshot.json and DIR/arrays.npz. The format (documented in README.md, "Framework upgrades:
# snapshot and check"):
#
# * ``snapshot.json``: ``format`` (the string ``FORMAT``), ``format_version`` (``FORMAT_VERSION``), ``model``,
#   ``kind`` (``zoo``, ``random``, ``files`` or ``trained``), ``dtype``, ``seed``, ``frameworks``, ``spec`` (the
#   model's description: the layer stack, or the article's model), ``batch`` (which inputs the arrays hold),
#   ``build_options`` (per framework, e.g. TF1's drawn LSTM cell, or ``activations``: the reference activations a
#   Keras 2 file's tensorflow side computes under other names), ``source`` (how ``--verify-update`` takes it again),
#   ``environment``, ``policy`` (per framework, each tensor's allowance: atol, rtol, why, rule), ``notes`` and
#   ``arrays``: an index of every array (key, role, framework, quantity, name, shape, dtype).
# * ``arrays.npz``: the arrays of the index, plain numeric ``.npy`` members of a deflated zip (the layout
#   ``np.savez_compressed`` writes, with a fixed timestamp so that the same snapshot gives the same bytes),
#   read with ``np.load(allow_pickle=False)``. Roles: ``input`` (the batch), ``weights`` (what the framework was
#   built from, canonical float64), ``read back`` (its weights read back from its model), ``results`` (its own
#   outputs, states, loss, accuracy, gradients) and ``reference`` (the float64 reference on the weights read back).
#
# Nothing in either file depends on the time or the machine's name, so the same command gives the same files.

import dataclasses
import hashlib
import importlib
import json
import math
import os
import platform
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from adapters.errors import BadInput
from verify.report import Allowance

FORMAT = "rnn-equivalence-verifier snapshot"
FORMAT_VERSION = 1
JSON_NAME, ARRAYS_NAME = "snapshot.json", "arrays.npz"
KINDS = ("zoo", "random", "files", "trained")
ROLES = ("input", "weights", "read back", "results", "reference")
# A member's timestamp in arrays.npz: fixed, since a zip records when each member was written.
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
SIMD_FLAGS = ("sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512cd", "avx512bw",
              "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")

Results = dict[str, dict[str, np.ndarray]]


@dataclass(frozen=True)
class Record:
    """One framework in a snapshot."""

    framework: str
    weights: dict[str, np.ndarray]          # what its model was built from (canonical, float64)
    read_back: dict[str, np.ndarray]        # its weights read back from the model
    results: Results                        # its own results
    reference: Results                      # the float64 reference on ``read_back``
    policy: dict[tuple[str, str], Allowance]


@dataclass(frozen=True)
class Snapshot:
    model: str
    kind: str
    dtype: str
    seed: int
    spec: Any
    batch: Any
    records: tuple[Record, ...]
    environment: dict
    source: dict
    build_options: dict[str, dict] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def frameworks(self) -> tuple[str, ...]:
        return tuple(r.framework for r in self.records)


# --- the environment ------------------------------------------------------------------------------------------

def _cpu() -> dict:
    """The CPU's model name, a hash of its flag list (any change of instruction set shows) and its SIMD flags."""
    model, flags = platform.processor() or platform.machine(), []
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model in ("", platform.machine(), platform.processor()):
                    model = value.strip()
                elif key.strip() in ("flags", "Features") and not flags:
                    flags = value.split()
    except OSError:  # not Linux: the model name from platform, no flags
        pass
    return {"model": model, "flags_sha256": hashlib.sha256(" ".join(sorted(flags)).encode()).hexdigest()[:16],
            "simd": [f for f in SIMD_FLAGS if f in flags]}


def _numpy() -> dict:
    out: dict[str, Any] = {"version": np.__version__}
    try:
        config = np.show_config(mode="dicts")
        blas = config.get("Build Dependencies", {}).get("blas", {})
        out["blas"] = f"{blas.get('name', '?')} {blas.get('version', '?')}"
        out["blas_config"] = blas.get("openblas configuration", "")
        simd = config.get("SIMD Extensions", {})
        out["simd_baseline"] = list(simd.get("baseline", []))
        out["simd_found"] = list(simd.get("found", []))
    except Exception as e:  # noqa: BLE001 - an older numpy's show_config: recorded as unknown, not fatal
        out["blas"] = f"unknown ({type(e).__name__})"
    return out


def _torch() -> dict:
    import torch
    lines = [l.strip(" -") for l in torch.__config__.show().splitlines()]
    # the build's components (compiler, MKL, oneDNN, OpenMP, CPU capability); "Build settings" is one long line of
    # compiler flags, of which the BLAS and the commit are kept
    build = [l for l in lines[1:] if l and not l.startswith("Build settings")]
    settings = next((l for l in lines if l.startswith("Build settings")), "")
    keep = [kv for kv in settings.removeprefix("Build settings:").split(", ") if kv.split("=")[0].strip() in
            ("BLAS_INFO", "LAPACK_INFO", "BUILD_TYPE", "COMMIT_SHA", "CXX_COMPILER", "TORCH_VERSION")]
    return {"version": torch.__version__, "git_version": torch.version.git_version, "build": build,
            "build_settings": [kv.strip() for kv in keep], "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads()}


def _tensorflow() -> dict:
    from adapters.tf_import import import_tf
    tf, keras = import_tf()
    return {"version": tf.__version__, "git_version": tf.version.GIT_VERSION, "compiler": tf.version.COMPILER_VERSION,
            "build_info": {k: str(v) for k, v in sorted(tf.sysconfig.get_build_info().items())},
            "keras": keras.__version__, "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads()}


def environment(frameworks: tuple[str, ...]) -> dict:
    """The facts a result can depend on: versions and builds of python, numpy and the frameworks used (only those:
    importing TensorFlow for a torch snapshot would cost seconds and record nothing used), the CPU, thread counts."""
    env: dict[str, Any] = {
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation(),
                   "build": " ".join(sys.version.split())},
        "platform": {"system": platform.system(), "machine": platform.machine()},
        "numpy": _numpy(),
        "cpu": _cpu(),
        "threads": {"cpu_count": os.cpu_count(),
                    **{v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                      "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")},
                    "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS")},
    }
    if "torch" in frameworks:
        env["torch"] = _torch()
    if "tensorflow" in frameworks or "tf1" in frameworks:
        env["tensorflow"] = _tensorflow()
    return env


def flatten(facts: dict, prefix: str = "") -> dict[str, str]:
    """``{"torch": {"version": "2.13.0"}}`` -> ``{"torch.version": "2.13.0"}`` (lists joined), for comparing."""
    out: dict[str, str] = {}
    for k, v in facts.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = ", ".join(map(str, v)) if isinstance(v, list) else ("unset" if v is None else str(v))
    return out


# --- descriptions as JSON --------------------------------------------------------------------------------------

def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def spec_to_json(spec: Any) -> dict:
    """A model description as JSON: its class and fields (a layer stack's layers each with its ``kind``)."""
    out: dict[str, Any] = {"class": type(spec).__name__}
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        if f.name == "layers":
            value = [{"kind": type(l).__name__, **{g.name: _plain(getattr(l, g.name)) for g in dataclasses.fields(l)}}
                     for l in value]
        out[f.name] = _plain(value)
    return out


def spec_from_json(d: Any, where: str) -> Any:
    """The description back; BadInput naming what is wrong (unknown class or layer, bad option)."""
    from reference import layers as layer_module
    from reference.seq2seq_spec import Seq2SeqSpec
    from reference.stack import StackSpec
    if not isinstance(d, dict):
        raise BadInput(f"{where}: spec: expected an object, got {type(d).__name__}")
    fields = {k: v for k, v in d.items() if k != "class"}
    try:
        if d.get("class") == "StackSpec":
            kinds = {"Embedding": layer_module.Embedding, "Masking": layer_module.Masking,
                     "Dropout": layer_module.Dropout, "Dense": layer_module.Dense, "Recurrent": layer_module.Recurrent}
            layers = []
            for raw in fields.get("layers") or []:
                if not isinstance(raw, dict) or raw.get("kind") not in kinds:
                    raise BadInput(f"{where}: spec: a layer must be an object with kind one of {', '.join(kinds)}, "
                                   f"got {str(raw)[:80]}")
                options = {k: v for k, v in raw.items() if k != "kind"}
                if "gate_activations" in options:
                    options["gate_activations"] = tuple(tuple(p) for p in options["gate_activations"])
                layers.append(kinds[raw["kind"]](**options))
            fields["layers"] = tuple(layers)
            return StackSpec(**fields)
        if d.get("class") == "Seq2SeqSpec":
            return Seq2SeqSpec(**fields)
    except BadInput:
        raise
    except (TypeError, ValueError) as e:
        raise BadInput(f"{where}: spec: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    raise BadInput(f"{where}: spec: expected class StackSpec or Seq2SeqSpec, got {d.get('class')!r}")


def _batch_arrays(batch: Any) -> tuple[dict, dict[str, np.ndarray]]:
    """A batch as a description (its class and which optional parts it has) and named arrays."""
    from reference.seq2seq_spec import Seq2SeqBatch
    arrays = {"inputs": batch.inputs, "targets": batch.targets}
    if isinstance(batch, Seq2SeqBatch):
        if batch.fed_back is not None:
            arrays["fed_back"] = batch.fed_back
        return {"class": "Seq2SeqBatch", "fed_back": batch.fed_back is not None}, arrays
    state = batch.initial_state
    if isinstance(state, dict):
        arrays.update({f"initial_state/{k}": v for k, v in state.items()})
        kind = "dict"
    elif state is not None:
        arrays["initial_state"] = state
        kind = "array"
    else:
        kind = None
    if batch.lengths is not None:
        arrays["lengths"] = batch.lengths
    return {"class": "Batch", "initial_state": kind, "lengths": batch.lengths is not None}, arrays


def _batch_from(d: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    from reference.seq2seq_spec import Seq2SeqBatch
    from reference.spec import Batch
    if not isinstance(d, dict) or d.get("class") not in ("Batch", "Seq2SeqBatch"):
        raise BadInput(f"{where}: batch: expected an object with class Batch or Seq2SeqBatch")
    for k in ("inputs", "targets"):
        if k not in arrays:
            raise BadInput(f"{where}: the index has no input array {k!r}")
    if d["class"] == "Seq2SeqBatch":
        return Seq2SeqBatch(arrays["inputs"], arrays["targets"], arrays.get("fed_back"))
    kind = d.get("initial_state")
    if kind == "dict":
        state: Any = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("initial_state/")}
    elif kind == "array":
        state = arrays.get("initial_state")
    else:
        state = None
    if kind in ("dict", "array") and (state is None or isinstance(state, dict) and not state):
        raise BadInput(f"{where}: batch: initial_state {kind!r} but the index has no initial state array")
    if d.get("lengths") and "lengths" not in arrays:
        raise BadInput(f"{where}: batch: lengths expected but the index has no 'lengths' array")
    return Batch(arrays["inputs"], arrays["targets"], state, arrays.get("lengths"))


# --- taking a snapshot ----------------------------------------------------------------------------------------

def _record_stack(fw: str, spec: Any, weights: dict, batch: Any, dtype: str, runs: Any = None) -> Record:
    """One framework built from ``weights`` and run (on ``runs``, the description as the framework computes it, where
    that differs: a Keras 2 file under Keras 3), and the reference on ``spec``."""
    from verify import engine
    run = engine.run_framework(fw, runs or spec, weights, batch, dtype)
    ref, allow = engine.reference_and_allowances(spec, run.extracted, batch, dtype)
    return Record(fw, dict(weights), run.extracted, run.results, ref, allow)


def _record_trained(fw: str, spec: Any, trained: dict, test: Any, dtype: str) -> Record:
    """A trained framework: rebuilt from its trained weights (as ``check`` rebuilds it) and run on the held-out set."""
    from adapters import registry
    from verify import training
    adapter = registry.get(fw, spec)
    model = adapter.build(spec, trained, dtype)
    read_back = adapter.extract(model)
    results = training.held_out_run(spec, adapter, model, test, dtype)
    ref, allow = training.held_out_reference(spec, read_back, test, results["output"].get("decoded"), dtype)
    return Record(fw, dict(trained), read_back, results, ref, allow)


def take_model(name: str, frameworks: tuple[str, ...], dtype: str, seed: int,
               progress: Callable[[str], None] = lambda s: None) -> Snapshot:
    """A zoo model (or ``random`` with the seed's draw): every framework built from the seed's weights and run on
    its batch; an article model is first trained by each framework as ``compare`` trains it."""
    from adapters import registry
    from reference.params import init_params
    from verify import engine, stage
    if dtype not in engine.DTYPES:
        raise BadInput(f"unknown dtype {dtype!r}; expected one of: {', '.join(engine.DTYPES)}")
    entry = engine.entry_of(name, frameworks, seed)
    spec = entry.spec
    rng = np.random.default_rng(seed)
    setup = entry.train
    params = setup.init(spec, rng) if setup is not None and setup.init is not None else init_params(spec, rng)
    env = environment(tuple(frameworks))
    records = []
    options: dict[str, dict] = {}
    notes = [spec.description]
    if setup is not None:
        from verify import training
        opt = training.optimizer_for(setup)  # the model's own optimiser, as compare trains it without --optimizer
        batches, test = setup.make_data(spec, rng, setup.steps, setup.batch_size, setup.held_out)
        what = "plain SGD" if opt.name == "sgd" else opt.name
        notes.append(training._training_note(spec, setup, batches, test, setup.steps, what, opt)
                     + f", by each framework from seed {seed}; recorded: each framework's trained weights and its "
                       f"results on the held-out set")
        carry = {"carry_state": True} if setup.carry_state else {}
        for fw in frameworks:
            adapter = registry.get(fw, spec)
            with stage.phase("training", fw):
                progress(f"{fw}: training {setup.steps} steps ({dtype})")
                model = adapter.build(spec, params, dtype, **training.build_options(setup, fw))
                adapter.train(model, spec, batches, opt.lr, dtype, progress, optimizer=opt.name, hyper=opt.hyper,
                              **carry)
                trained = adapter.extract(model)
            with stage.phase("running the held-out set", fw):
                progress(f"{fw}: rebuilding from the trained weights, running the held-out set, the reference")
                records.append(_record_trained(fw, spec, trained, test, dtype))
        batch, kind = test, "trained"
    else:
        batch = entry.make_batch(spec, rng)
        kind = "random" if name == "random" else "zoo"
        for fw in frameworks:
            if fw == "tf1":
                from adapters import tf1_stack
                if tf1_stack.build_options(spec):
                    options[fw] = tf1_stack.build_options(spec)
            with stage.phase("building and running", fw):
                progress(f"{fw}: building, reading back and running the model, the reference ({dtype})")
                records.append(_record_stack(fw, spec, params, batch, dtype))
    return Snapshot(name, kind, dtype, seed, spec, batch, tuple(records), env,
                    {"model": name, "frameworks": list(frameworks)}, options, tuple(notes))


def take_files(keras: str | None = None, torch: str | None = None, torch_module: str | None = None,
               tf1_checkpoint: str | None = None, forget_bias: float = 1.0, activation: str = "tanh",
               inputs: str | None = None, targets: str | None = None, dtype: str = "float32", seed: int = 0,
               progress: Callable[[str], None] = lambda s: None) -> Snapshot:
    """Users' files: their description (the Keras file's or the TF1 checkpoint's layers) and each file's weights
    in the canonical layout; each framework is built from its file's weights by the verifier's stack adapters
    (``check`` cannot rebuild a user's own module or file from a self-contained snapshot, so the snapshot
    records what the adapters compute on the files' weights, and ``check`` rebuilds the same)."""
    from adapters import registry
    from verify import api, engine, stage, user
    if dtype not in engine.DTYPES:
        raise BadInput(f"unknown dtype {dtype!r}; expected one of: {', '.join(engine.DTYPES)}")
    x = api._load_array(inputs, "--inputs")
    y = api._load_array(targets, "--targets")
    spec, sides, batch, note = user.load_sides(keras, torch, torch_module, tf1_checkpoint, forget_bias, activation,
                                               dtype, x, y, seed, progress)
    masked = batch.lengths is not None
    for side in sides:
        why = registry.get(side.framework, spec).supports(spec, masked)
        if why is not None:
            raise BadInput(f"{side.label}: cannot snapshot: {side.framework}'s stack adapter, which check rebuilds it "
                           f"with, cannot hold this model: {why}")
    frameworks = tuple(s.framework for s in sides)
    env = environment(frameworks)
    records = []
    options: dict[str, dict] = {}
    renamed_notes: list[str] = []
    for side in sides:
        runs = None
        if side.activations:  # a Keras 2 file under Keras 3: the tensorflow side runs what Keras 3 computes, as compare
            from adapters import keras2_h5
            runs = keras2_h5.renamed(spec, side.activations)
            options[side.framework] = {"activations": dict(side.activations)}
            renamed_notes.extend(side.notes)  # which definition each side computes, as compare says
        with stage.phase("building and running", side.framework):
            progress(f"{side.framework}: building from {side.label}'s weights, running, the reference ({dtype})")
            records.append(_record_stack(side.framework, spec, side.params, batch, dtype, runs))
    files = {"keras": keras, "torch": torch, "tf1_checkpoint": tf1_checkpoint, "inputs": inputs, "targets": targets}
    source = {k: os.path.abspath(v) for k, v in files.items() if v}
    if torch_module:
        source["torch_module"] = torch_module
    if tf1_checkpoint:
        source.update(forget_bias=forget_bias, activation=activation)
    labels = " and ".join(f"{s.framework} {s.label}" for s in sides)
    # the sides' own notes describe running the files themselves; TF1's forget_bias folding and a Keras 2 file's
    # definitions (renamed_notes) apply here too
    notes = (f"{labels}: each framework built by the verifier's adapters from its file's weights (canonical layout), "
             "as check rebuilds it", note) + tuple(n for s in sides if s.framework == "tf1" for n in s.notes) \
        + tuple(renamed_notes)
    return Snapshot(spec.name, "files", dtype, seed, spec, batch, tuple(records), env, source, options, notes)


# --- writing ----------------------------------------------------------------------------------------------------

def _allowance_json(a: Allowance) -> dict:
    def num(v: float) -> float | str:
        return v if math.isfinite(v) else str(v)
    return {"atol": num(a.atol), "rtol": num(a.rtol), "why": a.why, "rule": a.rule}


def _entries(snapshot: Snapshot) -> list[tuple[dict, np.ndarray]]:
    """Every array with its index entry, in a fixed order."""
    out: list[tuple[dict, np.ndarray]] = []

    def add(role: str, framework: str | None, quantity: str | None, name: str, value: Any) -> None:
        a = np.asarray(value)
        key = "/".join(p for p in (role.replace(" ", "_"), framework, quantity, name) if p)
        out.append(({"key": key, "role": role, "framework": framework, "quantity": quantity, "name": name,
                     "shape": list(a.shape), "dtype": a.dtype.str.lstrip("<>=|")}, a))
    _, batch_arrays = _batch_arrays(snapshot.batch)
    for name, value in batch_arrays.items():
        add("input", None, None, name, value)
    for r in snapshot.records:
        for name, value in r.weights.items():
            add("weights", r.framework, None, name, np.asarray(value, np.float64))
        for name, value in r.read_back.items():
            add("read back", r.framework, None, name, np.asarray(value, np.float64))
        for role, results in (("results", r.results), ("reference", r.reference)):
            for q, tensors in results.items():
                for n, v in tensors.items():
                    add(role, r.framework, q, n, v)
    return out


def document(snapshot: Snapshot, directory: str) -> tuple[dict, list[tuple[dict, np.ndarray]]]:
    """snapshot.json's content and the arrays. Source files are named relative to the snapshot's directory, so
    that a project moved whole keeps its snapshots retakable (and the JSON does not name the machine's paths)."""
    entries = _entries(snapshot)
    for entry, a in entries:
        if a.dtype.kind not in "biuf":
            raise ValueError(f"cannot snapshot {entry['key']}: dtype {a.dtype} is not a plain number")
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise BadInput(f"cannot snapshot: {entry['key']} holds NaN or infinite values (a snapshot records "
                           "finite results; run compare to see where they come from)")
    base = os.path.abspath(directory)
    source = {k: os.path.relpath(v, base) if k in ("keras", "torch", "tf1_checkpoint", "inputs", "targets") else v
              for k, v in snapshot.source.items()}
    batch_desc, _ = _batch_arrays(snapshot.batch)
    doc = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "model": snapshot.model, "kind": snapshot.kind, "dtype": snapshot.dtype, "seed": snapshot.seed,
        "frameworks": list(snapshot.frameworks),
        "spec": spec_to_json(snapshot.spec), "batch": batch_desc, "build_options": snapshot.build_options,
        "source": source, "notes": list(snapshot.notes), "environment": snapshot.environment,
        "policy": {r.framework: {f"{q} {n}": _allowance_json(a) for (q, n), a in r.policy.items()}
                   for r in snapshot.records},
        "arrays": [e for e, _ in entries],
    }
    return doc, entries


def _replace_atomically(path: str, write: Callable[[Any], None], binary: bool) -> None:
    """The whole file or nothing: written beside the target, then renamed over it."""
    fd, tmp = tempfile.mkstemp(prefix=".snapshot-", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as fh:
            write(fh)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write(snapshot: Snapshot, directory: str) -> tuple[str, str]:
    """Writes DIR/arrays.npz, then DIR/snapshot.json (each whole or not at all); returns both paths."""
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise BadInput(f"{directory}: exists and is not a directory; expected a directory for the snapshot")
    os.makedirs(directory, exist_ok=True)
    doc, entries = document(snapshot, directory)
    npz, js = os.path.join(directory, ARRAYS_NAME), os.path.join(directory, JSON_NAME)

    def arrays(fh: Any) -> None:
        with zipfile.ZipFile(fh, "w", zipfile.ZIP_DEFLATED) as z:
            for entry, a in entries:
                info = zipfile.ZipInfo(entry["key"] + ".npy", date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                with z.open(info, "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.array(a, order="C"), allow_pickle=False)
    _replace_atomically(npz, arrays, True)
    _replace_atomically(js, lambda fh: fh.write(json.dumps(doc, indent=1, allow_nan=False) + "\n"), False)
    return js, npz


# --- reading ----------------------------------------------------------------------------------------------------

def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _float(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise BadInput(f"{where}: expected a number, got {v!r}")
    try:
        return float(v)
    except ValueError:
        raise BadInput(f"{where}: expected a number, got {v!r}") from None


def _read_json(path: str) -> dict:
    if not os.path.isfile(path):
        raise BadInput(f"{path}: not found; expected {JSON_NAME} and {ARRAYS_NAME} written by "
                       "`python -m verify snapshot -o DIR`")
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(f"{c} is not JSON")))
    except (UnicodeDecodeError, ValueError) as e:  # JSONDecodeError is a ValueError
        raise BadInput(f"{path}: not a snapshot's JSON ({_first_line(e)}); expected the {JSON_NAME} that "
                       "`python -m verify snapshot` writes") from None
    except OSError as e:
        raise BadInput(f"{path}: cannot be read ({_first_line(e)})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BadInput(f"{path}: not a snapshot: expected a JSON object with \"format\": \"{FORMAT}\"")
    version = doc.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise BadInput(f"{path}: format_version {version!r}: expected an integer from 1 to {FORMAT_VERSION}")
    if version > FORMAT_VERSION:
        raise BadInput(f"{path}: written in snapshot format_version {version}, newer than this verifier reads "
                       f"({FORMAT_VERSION}); upgrade rnn-equivalence-verifier, or take the snapshot again")
    return doc


def _require(doc: dict, key: str, kind: type | tuple, path: str) -> Any:
    value = doc.get(key)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise BadInput(f"{path}: field {key!r}: expected {names}, got {type(value).__name__}")
    return value


def _read_arrays(path: str, index: list, json_path: str) -> dict[str, np.ndarray]:
    """Every array of the index, checked against it: present, the shape and dtype it names, plain numbers, finite;
    and nothing else in the file. Never unpickles (allow_pickle=False)."""
    if not os.path.isfile(path):
        raise BadInput(f"{path}: not found; expected the {ARRAYS_NAME} written beside {JSON_NAME}")
    out: dict[str, np.ndarray] = {}
    try:
        with np.load(path, allow_pickle=False) as npz:
            members = set(npz.files)
            for entry in index:
                key = entry["key"]
                if key not in members:
                    raise BadInput(f"{path}: array {key!r} is missing; {json_path} indexes it")
                try:
                    a = npz[key]
                except Exception as e:  # noqa: BLE001 - whatever a damaged or pickled member raises: unreadable
                    raise BadInput(f"{path}: array {key!r} cannot be read as a plain numeric array "
                                   f"({_first_line(e)})") from None
                if a.dtype.kind not in "biuf":
                    raise BadInput(f"{path}: array {key!r} has dtype {a.dtype}; expected plain numbers")
                if list(a.shape) != entry["shape"] or a.dtype.str.lstrip("<>=|") != entry["dtype"]:
                    raise BadInput(f"{path}: array {key!r} is {a.dtype.str.lstrip('<>=|')} {list(a.shape)}; "
                                   f"{json_path} says {entry['dtype']} {entry['shape']}")
                if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
                    raise BadInput(f"{path}: array {key!r} holds NaN or infinite values; expected finite numbers")
                out[key] = a
            extra = sorted(members - {e["key"] for e in index})
            if extra:
                raise BadInput(f"{path}: holds arrays {json_path} does not index: {', '.join(extra[:3])}")
    except BadInput:
        raise
    except Exception as e:  # noqa: BLE001 - not a zip, truncated, a pickle: one line, never a traceback
        raise BadInput(f"{path}: not a readable .npz of plain arrays ({type(e).__name__}: {_first_line(e)}); "
                       "expected the arrays.npz that `python -m verify snapshot` writes") from None
    return out


def read(directory: str) -> Snapshot:
    """A snapshot read back and validated; BadInput (one line) for anything it cannot use."""
    if not os.path.isdir(directory):
        raise BadInput(f"{directory}: no snapshot directory; expected a directory holding {JSON_NAME} and "
                       f"{ARRAYS_NAME} (python -m verify snapshot ... -o DIR)")
    js, npz = os.path.join(directory, JSON_NAME), os.path.join(directory, ARRAYS_NAME)
    doc = _read_json(js)
    model = _require(doc, "model", str, js)
    kind = _require(doc, "kind", str, js)
    if kind not in KINDS:
        raise BadInput(f"{js}: kind {kind!r}: expected one of {', '.join(KINDS)}")
    dtype = _require(doc, "dtype", str, js)
    if dtype not in ("float32", "float64"):
        raise BadInput(f"{js}: dtype {dtype!r}: expected float32 or float64")
    seed = _require(doc, "seed", int, js)
    frameworks = _require(doc, "frameworks", list, js)
    if not frameworks or not all(f in ("tensorflow", "torch", "tf1") for f in frameworks) \
            or len(set(frameworks)) != len(frameworks):
        raise BadInput(f"{js}: frameworks {frameworks!r}: expected distinct names of tensorflow, torch, tf1")
    spec = spec_from_json(doc.get("spec"), js)
    index = _require(doc, "arrays", list, js)
    for entry in index:
        ok = (isinstance(entry, dict) and isinstance(entry.get("key"), str) and entry.get("role") in ROLES
              and isinstance(entry.get("name"), str) and isinstance(entry.get("shape"), list)
              and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in entry["shape"])
              and isinstance(entry.get("dtype"), str))
        if not ok:
            raise BadInput(f"{js}: arrays: expected entries with key, role ({', '.join(ROLES)}), name, shape, dtype; "
                           f"got {str(entry)[:100]}")
        if entry["role"] not in ("input",) and entry.get("framework") not in frameworks:
            raise BadInput(f"{js}: array {entry['key']!r} belongs to framework {entry.get('framework')!r}, "
                           f"not one of {frameworks}")
        if entry["role"] in ("results", "reference") and not isinstance(entry.get("quantity"), str):
            raise BadInput(f"{js}: array {entry['key']!r}: expected a quantity")
    if len({e["key"] for e in index}) != len(index):
        raise BadInput(f"{js}: arrays: a key is indexed twice")
    arrays = _read_arrays(npz, index, js)
    batch = _batch_from(doc.get("batch"), {e["name"]: arrays[e["key"]] for e in index if e["role"] == "input"}, js)
    policy_doc = _require(doc, "policy", dict, js)
    records = []
    for fw in frameworks:
        mine = [e for e in index if e.get("framework") == fw]
        part: dict[str, Any] = {"weights": {}, "read back": {}, "results": {}, "reference": {}}
        for e in mine:
            a = arrays[e["key"]]
            if e["role"] in ("weights", "read back"):
                part[e["role"]][e["name"]] = a.astype(np.float64)
            else:
                part[e["role"]].setdefault(e["quantity"], {})[e["name"]] = a
        for role in ("weights", "results", "reference"):
            if not part[role]:
                raise BadInput(f"{js}: framework {fw} has no {role} arrays")
        allow = policy_doc.get(fw)
        if not isinstance(allow, dict):
            raise BadInput(f"{js}: policy: no allowances for {fw}")
        policy: dict[tuple[str, str], Allowance] = {}
        for q, tensors in part["reference"].items():
            for n in tensors:
                a = allow.get(f"{q} {n}")
                if a is None:
                    if q == "output" and n == "decoded":  # decisions are checked by their margins, not an allowance
                        continue
                    raise BadInput(f"{js}: policy: no allowance for {fw} {q} {n}")
                if not isinstance(a, dict):
                    raise BadInput(f"{js}: policy {fw} {q} {n}: expected an object with atol, rtol, why")
                policy[(q, n)] = Allowance(_float(a.get("atol"), f"{js}: policy {fw} {q} {n} atol"),
                                           _float(a.get("rtol"), f"{js}: policy {fw} {q} {n} rtol"),
                                           str(a.get("why", "")), str(a.get("rule", "")))
        family = importlib.import_module(spec.family)
        try:
            family.check_params(spec, part["weights"])
            family.check_params(spec, part["read back"])
        except ValueError as e:
            raise BadInput(f"{js}: {fw}'s weights do not fit the spec: {_first_line(e)}") from None
        records.append(Record(fw, part["weights"], part["read back"], part["results"], part["reference"], policy))
    _check_batch(spec, batch, js)
    build_options = doc.get("build_options") or {}
    if not isinstance(build_options, dict) or not all(isinstance(v, dict) for v in build_options.values()):
        raise BadInput(f"{js}: build_options: expected an object of objects per framework")
    _check_renames(build_options, js)
    env = doc.get("environment")
    source = doc.get("source")
    notes = doc.get("notes") or []
    if not isinstance(env, dict) or not isinstance(source, dict) or not isinstance(notes, list):
        raise BadInput(f"{js}: environment and source must be objects, notes a list")
    return Snapshot(model, kind, dtype, seed, spec, batch, tuple(records), env, source, build_options,
                    tuple(str(n) for n in notes))


def run_spec(snapshot: Snapshot, framework: str) -> Any:
    """The description as ``framework`` ran it: the spec, with the activations its build options rename (a Keras 2
    file under Keras 3 runs Keras 3's hard_sigmoid for the file's name; the reference runs the spec)."""
    names = (snapshot.build_options.get(framework) or {}).get("activations")
    if not names:
        return snapshot.spec
    from adapters import keras2_h5
    return keras2_h5.renamed(snapshot.spec, dict(names))


def _check_renames(build_options: dict, where: str) -> None:
    from reference.spec import ACTIVATIONS
    for fw, options in build_options.items():
        names = options.get("activations")
        if names is None:
            continue
        if not isinstance(names, dict) or not all(isinstance(k, str) and isinstance(v, str) and k in ACTIVATIONS
                                                  and v in ACTIVATIONS for k, v in names.items()):
            raise BadInput(f"{where}: build_options: {fw} activations: expected an object mapping activation names "
                           f"({', '.join(ACTIVATIONS)}) to activation names, got {str(names)[:80]}")


def _check_batch(spec: Any, batch: Any, where: str) -> None:
    """The inputs fit the spec (what the reference would otherwise raise on, mid-run)."""
    from reference import stack
    from reference.stack import StackSpec
    try:
        if isinstance(spec, StackSpec):
            stack.check_inputs(spec, batch.inputs)
            stack.initial_states(spec, batch)
            stack.lengths_mask(batch)
        else:
            from reference import seq2seq
            seq2seq._check_batch(spec, batch)
    except (ValueError, TypeError, IndexError, KeyError) as e:
        raise BadInput(f"{where}: the input arrays do not fit the spec: {_first_line(e)}") from None


# --- taking it again -------------------------------------------------------------------------------------------

def retake(directory: str, progress: Callable[[str], None] = lambda s: None) -> Snapshot:
    """The snapshot in ``directory`` taken again with the installed versions, from the source it records (the
    model and frameworks, or the files, named relative to the directory), and written over it."""
    js = os.path.join(directory, JSON_NAME)
    doc = _read_json(js)
    source = doc.get("source")
    dtype, seed = doc.get("dtype"), doc.get("seed")
    if not isinstance(source, dict) or not isinstance(dtype, str) or not isinstance(seed, int):
        raise BadInput(f"{js}: cannot take it again: expected source, dtype and seed")
    if "model" in source:
        snap = take_model(str(source["model"]), tuple(source.get("frameworks") or ()), dtype, seed, progress)
    else:
        base = os.path.abspath(directory)

        def path(k: str) -> str | None:
            return os.path.join(base, source[k]) if source.get(k) else None
        snap = take_files(keras=path("keras"), torch=path("torch"), torch_module=source.get("torch_module"),
                          tf1_checkpoint=path("tf1_checkpoint"), forget_bias=float(source.get("forget_bias", 1.0)),
                          activation=str(source.get("activation", "tanh")), inputs=path("inputs"),
                          targets=path("targets"), dtype=dtype, seed=seed, progress=progress)
    write(snap, directory)
    return snap
