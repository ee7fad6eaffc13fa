"""TF1 Saver checkpoints of TF1 cell models: read the variables, recognise them as a StackSpec, write them back.

Names TF 2.21's bundled TF1 cells really create (measured; ``tests/test_tf1_checkpoint.py`` builds each):

    rnn/basic_rnn_cell/{kernel, bias}                       dynamic_rnn / static_rnn, default scope "rnn"
    rnn/basic_lstm_cell/{kernel, bias}
    rnn/lstm_cell/{kernel, bias, w_i_diag, w_f_diag, w_o_diag, projection/kernel}
    rnn/gru_cell/{gates/kernel, gates/bias, candidate/kernel, candidate/bias}
    rnn/multi_rnn_cell/cell_N/<cell>/...                    MultiRNNCell, N = stacking order
    bidirectional_rnn/{fw,bw}/[multi_rnn_cell/cell_0/]<cell>/...   static_ or bidirectional_dynamic_rnn
    stack_bidirectional_rnn/cell_N/[bidirectional_rnn/]{fw,bw}/<cell>/...   contrib's stacked bidirectional

with any outer variable_scope in front (``encoder/rnn/...``). Groups of cells under scopes that differ
only in one number (``layer_0/rnn``, ``layer_1/rnn``) are stacked in that number's order. The head is
what is left: one 2-D kernel (and optionally one 1-D bias) chaining onto the last recurrent output
(``dense/kernel`` + ``dense/bias`` or a user pair such as ``softmax_w``/``softmax_b``). Optimiser slots
(``<variable>/Adam``, ``<variable>/Momentum``, ...) and bookkeeping (``global_step``, ``beta1_power``, ...)
are ignored and listed in the StackSpec's ``description``. Layouts go through ``adapters.tf1_tables``.

What a checkpoint does not store comes from ``describe``'s arguments: the activation, ``forget_bias``,
whether the head sees every step, and which last output a bidirectional model used (TF1's
``static_bidirectional_rnn(...)[0][-1]``, ``last_output="last_step"``).
"""
from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
import numpy as np

from adapters import tables, tf1_tables
from adapters.tf_import import import_tf
from reference import stack
from reference.layers import Dense, Recurrent
from reference.spec import SequenceSpec
from reference.stack import StackSpec

CELL_KINDS = {"basic_rnn_cell": "simple_rnn", "basic_lstm_cell": "lstm", "lstm_cell": "lstm", "gru_cell": "gru"}
REQUIRED = {"basic_rnn_cell": ("kernel", "bias"), "basic_lstm_cell": ("kernel", "bias"),
            "lstm_cell": ("kernel", "bias"),
            "gru_cell": ("gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias")}
OPTIONAL = {"lstm_cell": ("w_i_diag", "w_f_diag", "w_o_diag", "projection/kernel")}
# TF1's names for the column blocks of each gate-stacked variable, in stored order, and the canonical
# gate each is (reference.layout.GATES); used only to write the ``sources`` lines.
TF1_BLOCKS = {"kernel": ("i", "j", "f", "o"), "bias": ("i", "j", "f", "o"), "gates/kernel": ("r", "u"),
              "gates/bias": ("r", "u"), "candidate/kernel": ("h",), "candidate/bias": ("h",)}
TF1_TO_CANONICAL = {"j": "g", "u": "z"}
BOOKKEEPING = re.compile(r"(^|/)(global_step|beta1_power|beta2_power)(_\d+)?$")
SLOT = re.compile(r"^[A-Za-z][A-Za-z0-9]*(_\d+)?$")  # Adam, Adam_1, Momentum, RMSProp_1, ExponentialMovingAverage
EXPECTED = "a TF1 checkpoint prefix written by tf.compat.v1.train.Saver: {p}.index and {p}.data-00000-of-00001"
CELL_SCOPES = ("<scope>/[multi_rnn_cell/cell_N/][fw|bw/]{basic_rnn_cell,basic_lstm_cell,lstm_cell,gru_cell}/"
               "<kernel, bias, ...>")


def _fail(prefix: str, what: str, meant: str | None = None) -> ValueError:
    return ValueError(f"{prefix}: {what}; expected {EXPECTED.format(p=meant or prefix)}")


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".strip()


def read_checkpoint(prefix: str) -> dict[str, np.ndarray]:
    """Every variable of a TF1 Saver checkpoint by name (tensors only: nothing in it is executed)."""
    if os.path.isdir(prefix):
        tf = import_tf()[0]
        try:
            latest = tf.train.latest_checkpoint(prefix)
        except Exception:  # a broken "checkpoint" state file only loses the hint
            latest = None
        hint = f" (its latest checkpoint is {latest})" if latest else ""
        raise _fail(prefix, f"is a directory{hint}")
    suffix = re.search(r"\.(index|meta|data-\d{5}-of-\d{5})$", prefix)
    if suffix:  # the reader opens PREFIX.index as an empty checkpoint instead of failing
        raise _fail(prefix, f"names one file of a checkpoint, not its prefix (drop .{suffix.group(1)})",
                    prefix[:suffix.start()])
    if not os.path.exists(prefix + ".index") and not os.path.isfile(prefix):
        raise _fail(prefix, f"no such checkpoint ({prefix}.index does not exist)")
    tf = import_tf()[0]
    try:
        reader = tf.train.load_checkpoint(prefix)
        names = sorted(reader.get_variable_to_shape_map())
        variables = {name: np.asarray(reader.get_tensor(name)) for name in names}
    except Exception as error:  # tf.errors.*, IndexError on a truncated data file, ...
        raise _fail(prefix, f"cannot be read ({_first_line(error)})") from None
    if "_CHECKPOINTABLE_OBJECT_GRAPH" in variables or any("/.ATTRIBUTES/" in n for n in variables):
        raise _fail(prefix, "is a TF2 object-based checkpoint (tf.train.Checkpoint or Keras save_weights)")
    if not variables:
        raise _fail(prefix, "holds no variables")
    for name, value in variables.items():
        if value.dtype.kind in "fc" or value.dtype.name == "bfloat16":
            wide = value.astype(np.complex128 if value.dtype.kind == "c" else np.float64)  # bfloat16 too
            bad = int(np.size(value) - np.count_nonzero(np.isfinite(wide)))
            if bad:
                raise ValueError(f"{prefix}: variable {name} holds {bad} NaN or infinite value(s) of {value.size}; "
                                 "a checkpoint to verify must hold finite weights")
    return variables


@dataclass
class _Cell:
    """One TF1 cell's variables: ``scope`` ends with the cell's own scope (``.../basic_lstm_cell``)."""

    token: str
    scope: str
    tensors: dict[str, np.ndarray]


def _split(name: str) -> tuple[str, str | None, int | None, str, str] | None:
    """(group scope, direction, MultiRNNCell index, cell token, name relative to the cell) or None."""
    parts = name.split("/")
    for i in range(len(parts) - 2, -1, -1):  # the innermost cell scope: an outer scope may share its name
        token, rel = parts[i], "/".join(parts[i + 1:])
        if token in CELL_KINDS and rel in REQUIRED[token] + OPTIONAL.get(token, ()):
            head, index, direction = parts[:i], None, None
            if len(head) >= 2 and head[-2] == "multi_rnn_cell" and re.fullmatch(r"cell_\d+", head[-1]):
                index, head = int(head[-1][5:]), head[:-2]
            if head and head[-1] in ("fw", "bw"):
                direction, head = head[-1], head[:-1]
            return "/".join(head), direction, index, token, rel
    return None


def _ignored(variables: dict[str, np.ndarray]) -> list[str]:
    """Optimiser slots (``<variable>/<Name>`` shaped like the variable) and bookkeeping scalars."""
    out = []
    for name, value in variables.items():
        base, _, last = name.rpartition("/")
        if BOOKKEEPING.search(name) and np.ndim(value) == 0:
            out.append(name)
        elif base in variables and SLOT.match(last) and np.shape(variables[base]) == np.shape(value):
            out.append(name)
    return out


def _tf1_shapes(token: str, d_in: int, hidden: int, proj: int, peepholes: bool) -> dict[str, tuple[int, ...]]:
    """The variables a TF1 cell creates for ``d_in`` inputs (what ``describe`` checks, ``write_checkpoint`` fills)."""
    p = proj or hidden
    if token == "gru_cell":
        return {"gates/kernel": (d_in + p, 2 * hidden), "gates/bias": (2 * hidden,),
                "candidate/kernel": (d_in + p, hidden), "candidate/bias": (hidden,)}
    g = 1 if token == "basic_rnn_cell" else 4
    shapes = {"kernel": (d_in + p, g * hidden), "bias": (g * hidden,)}
    if peepholes:
        shapes.update({f"w_{gate}_diag": (hidden,) for gate in "ifo"})
    if proj:
        shapes["projection/kernel"] = (hidden, proj)
    return shapes


def _cell_sizes(cell: _Cell) -> tuple[int, int, int, bool]:
    """(input size, hidden size, projection size or 0, peepholes) from the shapes of one cell's variables."""
    t, token = cell.tensors, cell.token
    missing = [n for n in REQUIRED[token] if n not in t]
    if missing:
        raise ValueError(f"TF1 cell {cell.scope}: missing variable(s) {missing}; a {token} has "
                         f"{', '.join(REQUIRED[token] + OPTIONAL.get(token, ()))}")
    peep = [n for n in ("w_i_diag", "w_f_diag", "w_o_diag") if n in t]
    if peep and len(peep) != 3:
        raise ValueError(f"TF1 cell {cell.scope}: has {peep} but not all of w_i_diag, w_f_diag, w_o_diag "
                         "(LSTMCell use_peepholes creates all three)")
    kernel = "gates/kernel" if token == "gru_cell" else "kernel"
    if np.ndim(t[kernel]) != 2:
        raise ValueError(f"TF1 cell {cell.scope}: {kernel} must be 2-D (inputs + state, gates x hidden), "
                         f"got shape {np.shape(t[kernel])}")
    rows, cols = np.shape(t[kernel])
    if token == "gru_cell":
        hidden = np.shape(t["candidate/kernel"])[-1] if np.ndim(t["candidate/kernel"]) == 2 else 0
    else:
        g = 1 if token == "basic_rnn_cell" else 4
        if cols % g:
            raise ValueError(f"TF1 cell {cell.scope}: kernel has {cols} columns, not {g} equal gate blocks")
        hidden = cols // g
    proj_kernel = t.get("projection/kernel")
    proj = int(np.shape(proj_kernel)[-1]) if proj_kernel is not None and np.ndim(proj_kernel) == 2 else 0
    d_in = rows - (proj or hidden)
    expected = _tf1_shapes(token, d_in, hidden, proj, bool(peep))
    for n, shape in expected.items():
        if d_in < 1 or hidden < 1 or tuple(np.shape(t[n])) != shape:
            raise ValueError(f"TF1 cell {cell.scope}: {n} has shape {tuple(np.shape(t[n]))}; with hidden size "
                             f"{hidden}{f', projection {proj}' if proj else ''} and {kernel} of {rows} rows "
                             f"(= inputs + {proj or hidden}) the cell's shapes are {expected}")
    return d_in, hidden, proj, bool(peep)


def _order_groups(groups: list[str]) -> list[str]:
    """Cell groups in stacking order: one group, or groups whose scopes differ only in one number."""
    if len(groups) == 1:
        return groups
    numbers = [[int(n) for n in re.findall(r"\d+", g)] for g in groups]
    if len({re.sub(r"\d+", "#", g) for g in groups}) == 1:
        varying = [i for i in range(len(numbers[0])) if len({ns[i] for ns in numbers}) > 1]
        if len(varying) == 1 and len({ns[varying[0]] for ns in numbers}) == len(groups):
            return [g for _, g in sorted(zip([ns[varying[0]] for ns in numbers], groups))]
    raise ValueError(f"TF1 cells under several scopes {sorted(groups)} that do not form one stack; expected one "
                     "rnn/bidirectional_rnn scope (MultiRNNCell for depth), or scopes differing only in a layer "
                     "number (stack_bidirectional_rnn/cell_N)")


def _layers(cells: dict[tuple[str, str | None, int | None], _Cell]) -> list[dict[str, _Cell]]:
    """Per layer in stacking order: direction ("fw", "bw") -> cell."""
    by_group: dict[str, dict[tuple[str | None, int | None], _Cell]] = {}
    for (group, direction, index), cell in cells.items():
        by_group.setdefault(group, {})[(direction, index)] = cell
    out: list[dict[str, _Cell]] = []
    for group in _order_groups(sorted(by_group)):
        members = by_group[group]
        where = group or "the top scope"
        directions = sorted({d for d, _ in members}, key=str)
        if directions not in ([None], ["bw", "fw"]):
            raise ValueError(f"TF1 cells under {where}: directions {directions}; expected a forward stack, or both "
                             "fw and bw (bidirectional_rnn)")
        per_dir = {}
        for d in directions:
            indices = sorted((i for dd, i in members if dd == d), key=lambda i: -1 if i is None else i)
            if indices != [None] and indices != list(range(len(indices))):
                raise ValueError(f"TF1 cells under {where}{'/' + d if d else ''}: MultiRNNCell cells {indices}; "
                                 "expected cell_0, cell_1, ... without gaps (and no cell outside the MultiRNNCell)")
            per_dir[d] = [members[(d, i)] for i in indices]
        if directions == [None]:
            out.extend({"fw": c} for c in per_dir[None])
        elif len(per_dir["fw"]) == 1 and len(per_dir["bw"]) == 1:
            out.append({"fw": per_dir["fw"][0], "bw": per_dir["bw"][0]})
        else:  # fw and bw each run their own deep stack; no layer sees the other direction's output
            raise ValueError(f"TF1 cells under {where}: fw has {len(per_dir['fw'])} and bw {len(per_dir['bw'])} "
                             "stacked cells: two independent deep stacks, which a stack of bidirectional layers does "
                             "not compute; expected one cell per direction (stack_bidirectional_rnn for depth)")
    return out


def _source_line(entry: tf1_tables.Tf1Map, scope: str, cell_kind: str, d_in: int, rows: int) -> str:
    """Where one canonical tensor comes from, in words."""
    spans = {"x": f" rows 0:{d_in} (x)", "h": f" rows {d_in}:{rows} (h)", None: ""}
    parts, i = [], 0
    blocks = entry.blocks
    while i < len(blocks):
        var = blocks[i][0]
        picks = [b for b in blocks[i:] if b[0] == var]
        i += len(picks)
        names = TF1_BLOCKS.get(var, ()) if cell_kind != "simple_rnn" else ()
        text = f"{scope}/{var}{spans[entry.rows]}"
        if len(names) > 1 and len(names) == picks[0][2]:
            canon = [TF1_TO_CANONICAL.get(names[k], names[k]) for _, k, _ in picks]
            renamed = sorted({f"{names[k]} is {TF1_TO_CANONICAL[names[k]]}" for _, k, _ in picks
                              if names[k] in TF1_TO_CANONICAL})
            text += f", column blocks {','.join(names)} -> {','.join(canon)}"
            text += f" ({', '.join(renamed)})" if renamed else ""
        elif names == ("h",):
            text += " -> h"
        parts.append(text)
    return " + ".join(parts)


def describe(variables: dict[str, np.ndarray], forget_bias: float = 1.0, activation: str = "tanh",
             return_sequences: bool = True, name: str = "tf1 checkpoint"
             ) -> tuple[StackSpec, dict[str, np.ndarray], dict[str, str]]:
    """(StackSpec, canonical float64 params, canonical name -> where it came from) for a TF1 cell model.

    Recurrent layers are ``rnn/0``, ``rnn/1``, ... in stacking order, the dense head ``head``. Options a
    checkpoint does not store are the arguments: ``forget_bias`` (LSTM cells), ``activation`` (every cell),
    ``return_sequences`` (the head on every step, or on the last output). Ignored optimiser slots and
    bookkeeping variables are listed in the spec's ``description``."""
    ignored = set(_ignored(variables))
    cells: dict[tuple[str, str | None, int | None], _Cell] = {}
    leftover = []
    for var in sorted(variables):
        if var in ignored:
            continue
        found = _split(var)
        if found is None:
            leftover.append(var)
            continue
        group, direction, index, token, rel = found
        key = (group, direction, index)
        scope = var[:-len(rel) - 1]
        cell = cells.setdefault(key, _Cell(token, scope, {}))
        if cell.token != token or cell.scope != scope:
            raise ValueError(f"TF1 variables {cell.scope}/... and {var} are two cells in one place; expected one "
                             "cell per (scope, direction, MultiRNNCell index)")
        cell.tensors[rel] = variables[var]
    if not cells:
        raise ValueError(f"no TF1 cell variables among {sorted(variables)[:8]}{' ...' if len(variables) > 8 else ''}; "
                         f"expected {CELL_SCOPES}")
    layers, params, sources = [], {}, {}
    width = input_size = None
    ordered = _layers(cells)
    for k, dirs in enumerate(ordered):
        sizes = {d: _cell_sizes(c) for d, c in dirs.items()}
        tokens = {d: c.token for d, c in dirs.items()}
        if len(set(sizes.values())) > 1 or len(set(tokens.values())) > 1:
            raise ValueError(f"TF1 bidirectional cells {dirs['fw'].scope} and {dirs['bw'].scope} differ "
                             f"({tokens['fw']} {sizes['fw']} vs {tokens['bw']} {sizes['bw']} as (inputs, hidden, "
                             "projection, peepholes)); expected the same cell in both directions")
        d_in, hidden, proj, peep = sizes["fw"]
        if width is not None and d_in != width:
            raise ValueError(f"TF1 cell {dirs['fw'].scope} takes {d_in} inputs (kernel rows minus the state width), "
                             f"but the layer below it outputs {width}")
        kind = CELL_KINDS[tokens["fw"]]
        top = k == len(ordered) - 1
        layer = Recurrent(f"rnn/{k}", kind, hidden, activation=activation, recurrent_activation="sigmoid",
                          use_bias=True, reset_after=kind != "gru", forget_bias=forget_bias if kind == "lstm" else 0.0,
                          use_peepholes=peep, proj_size=proj, return_sequences=return_sequences or not top,
                          bidirectional=len(dirs) == 2, last_output="last_step" if len(dirs) == 2 else "final")
        table = tf1_tables.TABLES[kind]
        for d, cell in dirs.items():
            pre = f"{layer.name}/{d}"
            params.update(tf1_tables.gather(table, cell.tensors, d_in, pre))
            kernel_rows = d_in + (proj or hidden)
            for entry in table:
                if f"{pre}/{entry.canonical}" in params:
                    line = _source_line(entry, cell.scope, kind, d_in, kernel_rows)
                    if entry.canonical == "bias" and kind == "lstm":
                        line += f"; forget_bias {forget_bias:g} is added to f at run time (not stored: the argument)"
                    sources[f"{pre}/{entry.canonical}"] = line
        layers.append(layer)
        input_size = d_in if input_size is None else input_size
        width = layer.merged_width
    layers.extend(_head(variables, leftover, width, params, sources))
    spec = StackSpec(name, input_size, tuple(layers), "mse", "abs_tol",
                     description=_notes(layers, sorted(ignored), activation, forget_bias, return_sequences))
    stack.check_params(spec, params)
    return spec, params, sources


def _head(variables: dict[str, np.ndarray], leftover: list[str], width: int, params: dict, sources: dict) -> list:
    """The Dense head made of the variables no cell claimed: [] (none), or one Dense(head)."""
    if not leftover:
        return []
    kernels = [v for v in leftover if np.ndim(variables[v]) == 2 and np.shape(variables[v])[0] == width]
    biases = [v for v in leftover if np.ndim(variables[v]) == 1]
    kernel = kernels[0] if len(kernels) == 1 else None
    bias = None
    if kernel is not None:
        fitting = [b for b in biases if np.shape(variables[b]) == (np.shape(variables[kernel])[1],)]
        bias = fitting[0] if len(fitting) == 1 else None
    claimed = {kernel, bias} - {None}
    unknown = [v for v in leftover if v not in claimed]
    if kernel is None or unknown or (biases and bias is None):
        named = ", ".join(f"{v} {tuple(np.shape(variables[v]))}" for v in (unknown or leftover))
        under = sorted({t for v in (unknown or leftover) for t in v.split("/")[:-1] if t in CELL_KINDS})
        hint = "".join(f"; a {t} holds only {', '.join(REQUIRED[t] + OPTIONAL.get(t, ()))}" for t in under)
        raise ValueError(f"variable(s) {named} not recognised; expected TF1 cell variables {CELL_SCOPES}, optimiser "
                         "slots (<variable>/Adam, ...) and bookkeeping (global_step, beta1_power, ...), and at most "
                         f"one dense head on the last recurrent output: a 2-D kernel ({width}, O) and a 1-D bias (O)"
                         f"{hint}")
    units = int(np.shape(variables[kernel])[1])
    found = {"kernel": variables[kernel]} | ({"bias": variables[bias]} if bias else {})
    params.update(tables.to_canonical(tables.KERAS_DENSE, found, "head"))
    sources["head/kernel"] = f"{kernel} ({width} x {units}) as stored: y = x @ kernel"
    if bias:
        sources["head/bias"] = f"{bias} ({units}) as stored"
    return [Dense("head", units, use_bias=bias is not None)]


def _notes(layers: list, ignored: list[str], activation: str, forget_bias: float,
           return_sequences: bool) -> str:
    rec = [l for l in layers if isinstance(l, Recurrent)]
    kinds = ", ".join(f"{l.name} {'bidirectional ' if l.bidirectional else ''}{l.cell} {l.hidden_size}"
                      f"{f' proj {l.proj_size}' if l.proj_size else ''}{' peepholes' if l.use_peepholes else ''}"
                      for l in rec)
    head = "a dense head" if isinstance(layers[-1], Dense) else "no dense head"
    assumed = [f"activation {activation}", f"return_sequences {return_sequences}"]
    if any(l.cell == "lstm" for l in rec):
        assumed.append(f"forget_bias {forget_bias:g}")
    if any(l.bidirectional for l in rec) and not return_sequences:
        assumed.append("the last output is static_bidirectional_rnn(...)[0][-1] (backward half after the last input)")
    notes = [f"TF1 checkpoint: {kinds}; {head}", "not stored, taken from the arguments: " + ", ".join(assumed)]
    if ignored:
        slots = sorted({n.rpartition("/")[2] for n in ignored if not BOOKKEEPING.search(n)})
        books = [n for n in ignored if BOOKKEEPING.search(n)]
        what = books + ([f"{len(ignored) - len(books)} optimiser slot(s) */{', */'.join(slots)}"] if slots else [])
        notes.append("ignored (optimiser state and bookkeeping): " + ", ".join(what))
    return "; ".join(notes)


def as_sequence_spec(spec: StackSpec) -> SequenceSpec | None:
    """The homogeneous ``SequenceSpec`` (what ``adapters.tf1_cells`` runs) this stack is, with the same
    parameter names; None when its layers differ in cell or options or it has no linear Dense head."""
    return stack.to_sequence(spec)


def _tf1_variables(spec: StackSpec, params: dict[str, np.ndarray], cell: str = "basic") -> dict[str, np.ndarray]:
    """TF1 variable name -> float64 value, as TF1 cells would name them (the inverse of ``describe``)."""
    if cell not in ("basic", "lstm_cell"):
        raise ValueError(f"cell {cell!r}: expected 'basic' (BasicRNNCell, BasicLSTMCell, GRUCell) or 'lstm_cell' "
                         "(LSTMCell for LSTM layers)")
    stack.check_params(spec, params)
    rec = [l for l in spec.layers if isinstance(l, Recurrent)]
    rest = spec.layers[len(rec):]
    if not rec or list(spec.layers[:len(rec)]) != rec or len(rest) > 1 or (rest and not isinstance(rest[0], Dense)):
        raise ValueError(f"model {spec.name!r}: TF1 cell checkpoints hold recurrent layers then at most one Dense "
                         f"head; got {[type(l).__name__ for l in spec.layers]}")
    bidirectional = {l.bidirectional for l in rec}
    if len(bidirectional) > 1:
        raise ValueError(f"model {spec.name!r}: TF1 names a stack of forward layers (MultiRNNCell) or of bidirectional "
                         "layers (stack_bidirectional_rnn), not a mix")
    out: dict[str, np.ndarray] = {}
    d_in = spec.input_size
    for k, layer in enumerate(rec):
        why = _unwritable(layer, cell)
        if why:
            raise ValueError(f"layer {layer.name}: {why}")
        token = {"simple_rnn": "basic_rnn_cell", "gru": "gru_cell"}.get(
            layer.cell, "basic_lstm_cell" if cell == "basic" else "lstm_cell")
        shapes = _tf1_shapes(token, d_in, layer.hidden_size, layer.proj_size, layer.use_peepholes)
        for d in layer.directions:
            if layer.bidirectional:
                scope = f"bidirectional_rnn/{d}" if len(rec) == 1 else f"stack_bidirectional_rnn/cell_{k}/{d}"
            else:
                scope = "rnn" if len(rec) == 1 else f"rnn/multi_rnn_cell/cell_{k}"
            values = tf1_tables.scatter(tf1_tables.TABLES[layer.cell], params, shapes, d_in, f"{layer.name}/{d}")
            out.update({f"{scope}/{token}/{n}": v for n, v in values.items()})
        d_in = layer.merged_width
    if rest:
        head = rest[0]
        out["dense/kernel"] = np.asarray(params[f"{head.name}/kernel"], np.float64)
        if head.use_bias:
            out["dense/bias"] = np.asarray(params[f"{head.name}/bias"], np.float64)
    return out


def _unwritable(layer: Recurrent, cell: str) -> str | None:
    """Why TF1 cells cannot hold ``layer`` (options a TF1 checkpoint would silently lose), or None."""
    if not layer.use_bias:
        return "TF1 cells always have a bias"
    if layer.cell != "simple_rnn" and layer.recurrent_activation != "sigmoid":
        return "TF1 LSTM and GRU cells use sigmoid gates"
    if layer.cell == "gru" and layer.reset_after:
        return "TF1 GRUCell resets before the recurrent matmul (reset_after=False)"
    if layer.go_backwards:
        return "TF1 cells have no go_backwards (a reversed input is not in the variable names)"
    if layer.bidirectional and layer.merge_mode != "concat":
        return "TF1 bidirectional_rnn concatenates the directions (merge_mode concat)"
    if layer.cell == "lstm" and cell == "basic" and (layer.use_peepholes or layer.proj_size):
        return "BasicLSTMCell has no peepholes or projection; use cell='lstm_cell' (LSTMCell)"
    return None


def write_checkpoint(prefix: str, spec: StackSpec, params: dict[str, np.ndarray], cell: str = "basic",
                     dtype: str | None = None) -> None:
    """Save ``params`` with ``tf.compat.v1.train.Saver`` under the names TF1 cells create, so that
    ``describe(read_checkpoint(prefix))`` gives them back bit for bit.

    ``cell``: "basic" (BasicRNNCell, BasicLSTMCell, GRUCell) or "lstm_cell" (LSTMCell for LSTM layers).
    ``dtype``: the stored dtype; None stores float32, as TF1 models do, when every value is a float32
    number, else float64 (never rounds). Options the variables do not hold (activation, forget_bias,
    return_sequences) are ``describe``'s arguments when reading back."""
    values = _tf1_variables(spec, params, cell)
    if dtype is None:
        exact = all(np.array_equal(v.astype(np.float32).astype(np.float64), v) for v in values.values())
        dtype = "float32" if exact else "float64"
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype {dtype!r}: expected float32 or float64")
    for n, v in values.items():
        if not np.array_equal(v.astype(dtype).astype(np.float64), v):
            raise ValueError(f"{n} would round when stored as {dtype}; store float64 (dtype=None or 'float64')")
    directory = os.path.dirname(os.path.abspath(prefix))
    if not os.path.isdir(directory):
        raise ValueError(f"{prefix}: directory {directory} does not exist")
    tf = import_tf()[0]
    tf.get_logger().setLevel("ERROR")  # the v1 APIs log a deprecation notice per call
    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # zeros then load: values never become graph constants (the GraphDef is capped at 2 GB)
        made = {n: v1.get_variable(n, v.shape, dtype, initializer=v1.zeros_initializer()) for n, v in values.items()}
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            for n, var in made.items():
                var.load(values[n].astype(dtype), session)
            # write_state=False: leave the directory's "checkpoint" file (the user's latest) alone
            v1.train.Saver(var_list=made).save(session, prefix, write_state=False, write_meta_graph=False)
