"""PyTorch adapter for layer stacks: nn.Embedding, nn.RNN/LSTM/GRU groups, nn.Linear, built, loaded, read back and run.

A torch model's weighted modules come in the order of the description's weighted layers. One torch
recurrent module may compute several consecutive recurrent layers (``nn.LSTM(num_layers=2)``);
a ``Group`` says which module computes which layers, and is the unit a state_dict is read in: a
tensor belongs to the module that owns it (its key up to the last dot: ``rnn1``, ``encoder.0.rnn``).

Recurrent groups reuse ``adapters.torch_nn``'s stacks: torch's native layer where torch has the
option, otherwise a loop of torch ops with nn.LSTM's parameter names (so a state_dict loads the same
way into either). Layouts (transposes, GRU gate order, torch's two biases) come from
``adapters/tables.py``. Dropout applies the keep masks a batch gives (``Batch.dropout_masks``, drawn by the
reference) and is the identity without them; ``train`` trains with torch.optim (adapters/torch_optim.py).
"""
from __future__ import annotations

import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from adapters import tables, torch_nn, torch_optim
from reference import stack
from reference.layers import Dense, Dropout, Embedding, Masking, Recurrent, check_buildable
from reference.layout import initial_state_gradient_name
from reference.spec import Batch, SequenceSpec
from reference.stack import StackSpec

FRAMEWORK = "torch"
SUFFIX = torch_nn.SUFFIX
EMBEDDING = (tables.TensorMap("embeddings", ("weight",)),)
RECURRENT_KEYS = ("weight_ih_l", "weight_hh_l", "bias_ih_l", "bias_hh_l", "weight_hr_l")
# deliberately broken models for the verifier's own tests: "own_dropout_rng" trains with torch's nn.Dropout (its own
# random generator) instead of the masks the batches give
VARIANTS = ("", "own_dropout_rng")


@dataclass(frozen=True)
class Group:
    module: str               # torch module name: the owner of its tensors in a state_dict
    layers: tuple[str, ...]   # the description's layers it computes, in order


def versions() -> dict[str, str]:
    return torch_nn.versions()


def supports(spec: StackSpec, masked: bool = False) -> str | None:
    """None when torch can hold ``spec`` (and run it on masked batches); otherwise why not."""
    for layer in spec.recurrent_layers:
        if layer.use_peepholes or layer.forget_bias:
            return f"layer {layer.name}: torch has no peephole LSTM and no run-time forget_bias"
        if masked and layer.go_backwards:
            return f"layer {layer.name}: a flipped padded batch puts the padding first, which packed sequences " \
                   "cannot express"
    return None


def default_groups(spec: StackSpec) -> list[Group]:
    """One torch module per weighted layer, named after it."""
    return [Group(layer.name.replace("/", "_"), (layer.name,)) for layer in stack.weighted_layers(spec)]


def _layers(spec: StackSpec) -> dict[str, Any]:
    return {layer.name: layer for layer in spec.layers}


def group_spec(spec: StackSpec, group: Group) -> SequenceSpec:
    """The homogeneous recurrent stack a group computes, as ``adapters.torch_nn``'s stacks take it
    (states and parameters under ``rnn/k/d``). ValueError when the layers cannot share one module."""
    by_name = _layers(spec)
    layers = [by_name[n] for n in group.layers]
    first = layers[0]
    index = spec.layers.index(first)
    d_in = spec.input_size if index == 0 else stack.widths(spec)[index - 1][0]
    shared = ("cell", "hidden_size", "activation", "recurrent_activation", "use_bias", "reset_after", "proj_size",
              "bidirectional", "use_peepholes", "forget_bias")
    for layer in layers[1:]:
        differ = [f for f in shared if getattr(layer, f) != getattr(first, f)]
        if differ:
            raise ValueError(f"torch module {group.module} computes layers {', '.join(group.layers)} as one module, "
                             f"but they differ in {', '.join(differ)}")
    for layer in layers[:-1]:
        if not layer.return_sequences or (layer.bidirectional and layer.merge_mode != "concat"):
            raise ValueError(f"torch module {group.module}: layer {layer.name} feeds the next layer of the same "
                             "module, which torch does with the whole sequence, directions concatenated")
    if len(layers) > 1:
        last = spec.layers.index(layers[-1])
        between = [l.name for l in spec.layers[index:last + 1] if not isinstance(l, (Recurrent, Dropout))]
        if between:
            raise ValueError(f"torch module {group.module}: layers {between} sit between its recurrent layers")
    return SequenceSpec(group.module, input_size=d_in, hidden_size=first.hidden_size, output_size=1, cell=first.cell,
                        activation=first.activation, recurrent_activation=first.recurrent_activation,
                        use_bias=first.use_bias, reset_after=first.reset_after, proj_size=first.proj_size,
                        num_layers=len(layers), bidirectional=first.bidirectional, merge_mode="concat")


def _trailing_padding(torch: Any, mask: Any) -> bool:
    """Whether every sequence's masked steps all come after its real ones (what packed sequences express)."""
    lengths = mask.sum(dim=1)
    return bool((mask == (torch.arange(mask.shape[1], device=mask.device)[None, :] < lengths[:, None])).all())


def _act(torch: Any, name: str) -> Any:
    if name == "softmax":
        return lambda z: torch.softmax(z, dim=-1)
    return torch_nn._act(name)


def _model_class() -> Any:
    """Defined on first use so that importing this file does not import torch."""
    import torch
    nn = torch.nn
    stacks = torch_nn._modules().stacks

    class StackModel(nn.Module):
        """The description's layers in order; recurrent layers computed by their group's module."""

        def __init__(self, spec: StackSpec, groups: list[Group]) -> None:
            super().__init__()
            self.spec, self.groups = spec, list(groups)
            # the deliberately broken variant's nn.Dropout per Dropout layer (a plain dict: no state_dict entries)
            self.own_dropout: dict[str, Any] = {}
            self.attr: dict[str, str] = {}   # group module name -> attribute holding it
            self.group_of: dict[str, Group] = {}
            by_name = _layers(spec)
            for g in self.groups:
                attr = "m_" + "".join(c if c.isalnum() else "_" for c in g.module)
                self.attr[g.module] = attr
                self.group_of.update({n: g for n in g.layers})
                first = by_name[g.layers[0]]
                index = spec.layers.index(first)
                d_in = spec.input_size if index == 0 else stack.widths(spec)[index - 1][0]
                if isinstance(first, Embedding):
                    module = nn.Embedding(first.input_dim, first.output_dim)
                elif isinstance(first, Dense):
                    module = nn.Linear(d_in, first.units, bias=first.use_bias)
                else:
                    gs = group_spec(spec, g)
                    module = (stacks["native"] if torch_nn.is_native(gs) else stacks["loop"])(gs)
                setattr(self, attr, module)
            missing = [l.name for l in stack.weighted_layers(spec) if l.name not in self.group_of]
            if missing:
                raise ValueError(f"no torch module computes layer(s) {missing}")

        def module_of(self, group: Group) -> Any:
            return getattr(self, self.attr[group.module])

        def owner(self, group: Group) -> Any:
            """The module whose parameters a state_dict names (nn.LSTM itself, not its wrapper)."""
            module = self.module_of(group)
            return getattr(module, "rnn", module) if type(module).__name__ == "NativeStack" else module

        def _recurrent(self, group: Group, seq: Any, states: dict, mask: Any) -> tuple[Any, dict]:
            spec = self.spec
            by_name = _layers(spec)
            layers = [by_name[n] for n in group.layers]
            top = layers[-1]
            gs = self.module_of(group).spec
            local: dict[str, Any] = {}
            renamed: dict[str, str] = {}
            for k, layer in enumerate(layers):
                for d in layer.directions:
                    for mine, theirs in zip(stack.state_names(layer, d), torch_nn.state_names(gs, f"rnn/{k}/{d}")):
                        local[theirs], renamed[theirs] = states[mine], mine
            if top.go_backwards:
                seq = torch.flip(seq, dims=(1,))
                mask = None if mask is None else torch.flip(mask, dims=(1,))
            module = self.module_of(group)
            if mask is not None and torch_nn.is_native(gs) and not _trailing_padding(torch, mask):
                # Packed sequences hold padding only at the end: run the same parameters through the loop
                # of torch ops (nn.LSTM's names), which carries the state through a masked step anywhere.
                fw, bw, fin = torch.func.functional_call(stacks["loop"](gs).to(seq.dtype),
                                                         dict(module.rnn.named_parameters()), (seq, local, mask))
            else:
                fw, bw, fin = module(seq, local, mask)
            if mask is not None and not top.zero_output_for_mask:
                # Keras's default: a padded step repeats the last real step's output (torch pads with zeros)
                steps = torch.arange(mask.shape[1], device=mask.device)[None, :].expand_as(mask)
                last = torch.cummax(torch.where(mask, steps, torch.full_like(steps, -1)), dim=1).values
                keep = (last >= 0).unsqueeze(-1).to(fw.dtype)
                fw = torch.gather(fw, 1, last.clamp(min=0).unsqueeze(-1).expand_as(fw)) * keep
            if top.return_sequences:
                out = torch_nn._merge(torch, top.merge_mode, fw, bw) if top.bidirectional else fw
            elif not top.bidirectional:
                out = fw[:, -1]
            else:
                out = torch_nn._merge(torch, top.merge_mode, fw[:, -1], bw[:, 0 if top.last_output == "final" else -1])
            return out, {renamed[n]: v for n, v in fin.items()}

        def forward(self, x: Any, states: dict, mask: Any = None, dropout: dict | None = None
                    ) -> tuple[Any, dict, dict]:
            """(prediction, each recurrent group's top layer output, final states in canonical names).
            ``dropout``: keep masks by Dropout layer name (``Batch.dropout_masks``), applied as the reference does."""
            seq, outputs, finals = x, {}, {}
            group_input, open_group = None, None
            for layer in self.spec.layers:
                if isinstance(layer, Embedding):
                    ids, seq = seq, self.module_of(self.group_of[layer.name])(seq)
                    if layer.mask_zero:
                        mask = ids != 0
                elif isinstance(layer, Masking):
                    mask = (seq != layer.mask_value).any(dim=-1)
                    seq = seq * mask.unsqueeze(-1).to(seq.dtype)
                elif isinstance(layer, Dense):
                    seq = _act(torch, layer.activation)(self.module_of(self.group_of[layer.name])(seq))
                elif isinstance(layer, Recurrent):
                    group = self.group_of[layer.name]
                    if layer.name == group.layers[0]:
                        group_input, open_group = seq, group
                    if layer.name != group.layers[-1]:
                        continue  # computed inside its group's module, with the group's last layer
                    open_group = None
                    seq, fin = self._recurrent(group, group_input, states, mask)
                    finals.update(fin)
                    outputs[layer.name] = seq
                    if not layer.return_sequences:
                        mask = None
                elif isinstance(layer, Dropout):
                    seq = self._dropout(layer, seq, dropout or {}, open_group)
            return seq, outputs, finals

        def _dropout(self, layer: Dropout, seq: Any, dropout: dict, open_group: Group | None) -> Any:
            """torch's own nn.Dropout in training mode in the broken variant; else the injected keep mask,
            x * (mask / (1 - rate)) as the reference computes it; else the identity (inference)."""
            if layer.name in self.own_dropout and self.training:
                return self.own_dropout[layer.name](seq)
            if layer.name in dropout:
                if open_group is not None:
                    raise ValueError(f"torch module {open_group.module} computes layers {', '.join(open_group.layers)} "
                                     f"as one module: a dropout mask for layer {layer.name} between them cannot be "
                                     "applied")
                return seq * (dropout[layer.name] / (1.0 - layer.rate))
            return seq

    return StackModel


def _dtype(dtype: str) -> Any:
    return torch_nn._dtype(dtype)


def _tables(spec: StackSpec, group: Group) -> list[tuple[tuple, str, dict]]:
    """(layout table, canonical prefix, name format) for each tensor family of a group's owner module."""
    by_name = _layers(spec)
    first = by_name[group.layers[0]]
    if isinstance(first, Embedding):
        return [(EMBEDDING, first.name, {})]
    if isinstance(first, Dense):
        return [(tables.TORCH_LINEAR, first.name, {})]
    out = []
    for k, name in enumerate(group.layers):
        layer = by_name[name]
        for d in layer.directions:
            out.append((torch_nn.TABLES[layer.cell], f"{name}/{d}", {"layer": k, "suffix": SUFFIX[d]}))
    return out


def empty(spec: StackSpec, groups: list[Group] | None = None, dtype: str = "float32", device: str = "cpu") -> Any:
    """A torch model of the description (uninitialised weights), one module per group, on ``device``."""
    reason = supports(spec)
    if reason:
        raise ValueError(f"torch cannot build {spec.name!r}: {reason}")
    return _model_class()(spec, groups or default_groups(spec)).to(device=device, dtype=_dtype(dtype))


def expected_shapes(model: Any) -> dict[str, dict[str, tuple[int, ...]]]:
    """Group module name -> its tensors' names and shapes, as torch lays them out."""
    return {g.module: {n: tuple(p.shape) for n, p in model.owner(g).named_parameters()} for g in model.groups}


def load(model: Any, tensors: dict[str, dict[str, np.ndarray]], source: str = "state_dict") -> Any:
    """Copy a state_dict's tensors (by owner module, then tensor name) into ``model``; ValueError naming the
    tensor and both shapes, or the missing and unexpected names."""
    import torch
    for g in model.groups:
        owner = model.owner(g)
        given = tensors.get(g.module, {})
        want = dict(owner.named_parameters())
        missing = [n for n in want if n not in given]
        extra = [n for n in given if n not in want]
        if missing or extra:
            raise ValueError(f"{source}: torch module {g.module} (layers {', '.join(g.layers)}) expects tensors "
                             f"{sorted(want)}; missing {missing}, unexpected {extra}")
        for n, p in want.items():
            value = np.asarray(given[n])
            if tuple(value.shape) != tuple(p.shape):
                raise ValueError(f"{source}: {g.module}.{n} has shape {tuple(value.shape)}, but layer "
                                 f"{', '.join(g.layers)} needs {tuple(p.shape)}")
            with torch.no_grad():
                p.copy_(torch.from_numpy(value.astype(np.float64)).to(p.dtype))
    return model


def build(spec: StackSpec, params: dict[str, np.ndarray], dtype: str, groups: list[Group] | None = None,
          split_bias: bool = True, variant: str = "", device: str = "cpu", one_bias: bool = False) -> Any:
    """A torch model holding exactly ``params`` (cast to ``dtype``). A simple RNN's or LSTM's canonical bias is
    split unequally over bias_ih and bias_hh (exactly), so that a second bias is never silently zero; ``port``
    writes it into bias_ih and zeros, as a port usually does (``split_bias=False``). ``one_bias``: the bias goes
    into bias_ih and bias_hh is held at zero, frozen (``requires_grad`` False), so that the model trains one bias
    per layer as a one-bias original (TF1, Keras) does (``summed_tensors``). ``variant`` builds a deliberately
    broken model for the verifier's own tests (``VARIANTS``)."""
    stack.check_params(spec, params)
    check_buildable(spec.layers, "torch")
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
    model = empty(spec, groups, dtype, device)
    if variant == "own_dropout_rng":
        import torch
        model.own_dropout = {l.name: torch.nn.Dropout(l.rate) for l in spec.layers if isinstance(l, Dropout)}
    tensors: dict[str, dict[str, np.ndarray]] = {}
    for g in model.groups:
        values: dict[str, np.ndarray] = {}
        for table, pre, fmt in _tables(spec, g):
            values.update(tables.from_canonical(table, params, pre, fmt, split=split_bias and not one_bias))
        tensors[g.module] = {n: v.astype(dtype) for n, v in values.items()}
    model = load(model, tensors, f"torch model {spec.name}")
    if one_bias:
        for g in model.groups:
            owned = dict(model.owner(g).named_parameters())
            for table, _, fmt in _tables(spec, g):
                for entry in table:
                    for extra in entry.framework[1:]:  # the second summand: bias_hh of a simple RNN or an LSTM
                        if extra.format(**fmt) in owned:  # absent without biases (use_bias False)
                            owned[extra.format(**fmt)].requires_grad_(False)
    return model


def canonical(spec: StackSpec, groups: list[Group], owners: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Tensors by owner module and torch name -> canonical float64 parameters (torch's two biases summed)."""
    params: dict[str, np.ndarray] = {}
    for g in groups:
        for table, pre, fmt in _tables(spec, g):
            params.update(tables.to_canonical(table, owners.get(g.module, {}), pre, fmt))
    return {n: params[n] for n in stack.param_shapes(spec) if n in params}


def tensor_names(spec: StackSpec, groups: list[Group]) -> dict[str, str]:
    """Canonical parameter -> the torch tensor(s) holding it, as a user's state_dict names them."""
    out: dict[str, str] = {}
    for g in groups:
        for table, pre, fmt in _tables(spec, g):
            for entry in table:
                names = [f"{g.module}.{n.format(**fmt)}" if g.module else n.format(**fmt) for n in entry.framework]
                out[f"{pre}/{entry.canonical}"] = " + ".join(names)
    return out


def extract(model: Any) -> dict[str, np.ndarray]:
    """The model's weights in the canonical layout, float64 (torch's two biases summed)."""
    owners = {g.module: {n: p.detach().cpu().double().numpy().copy() for n, p in model.owner(g).named_parameters()}
              for g in model.groups}
    return canonical(model.spec, model.groups, owners)


def gradients(spec: StackSpec, groups: list[Group], owners: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Parameter gradients by owner and torch name -> canonical (a summed bias has either summand's gradient)."""
    out: dict[str, np.ndarray] = {}
    for g in groups:
        for table, pre, fmt in _tables(spec, g):
            out.update(torch_nn._grads_to_canonical(table, owners[g.module], pre, fmt))
    return {n: out[n] for n in stack.param_shapes(spec)}


def state_dict(model: Any) -> "OrderedDict[str, np.ndarray]":
    """``owner.tensor`` -> array, as a user's state_dict names them (what ``port`` writes)."""
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    for g in model.groups:
        for n, p in model.owner(g).named_parameters():
            out[f"{g.module}.{n}"] = p.detach().cpu().numpy().copy()
    return out


def by_owner(tensors: dict[str, np.ndarray]) -> "OrderedDict[str, dict[str, np.ndarray]]":
    """A flat state_dict grouped by owning module (key up to its last dot), in the file's order."""
    owners: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()
    for key, value in tensors.items():
        owner, _, name = key.rpartition(".")
        owners.setdefault(owner, {})[name] = value
    return owners


def match_groups(spec: StackSpec, tensors: dict[str, np.ndarray], source: str) -> list[Group]:
    """Pair a state_dict's modules with the description's weighted layers, in order: a recurrent module
    with ``weight_ih_l0..l{n-1}`` takes the next n recurrent layers; a module with ``weight`` (and
    ``bias``) the next Dense or Embedding. ValueError naming the module and the layer that disagree."""
    weighted = stack.weighted_layers(spec)
    names = ", ".join(f"{type(l).__name__} {l.name}" for l in weighted)
    groups, i = [], 0
    for owner, ts in by_owner(tensors).items():
        label = owner or "(top level)"
        if i >= len(weighted):
            raise ValueError(f"{source}: extra torch module {label} ({', '.join(ts)}): every weighted layer of the "
                             f"model is already matched ({names})")
        layer = weighted[i]
        if any(n.startswith(RECURRENT_KEYS) for n in ts):
            unknown = [n for n in ts if not n.startswith(RECURRENT_KEYS)]
            if unknown:
                raise ValueError(f"{source}: torch module {label}: tensors {unknown} are not nn.RNN/LSTM/GRU tensors")
            depth = len({n.split("_l")[1].split("_")[0] for n in ts})
            take = weighted[i:i + depth]
            if len(take) < depth or not all(isinstance(l, Recurrent) for l in take):
                raise ValueError(f"{source}: torch module {label} is a recurrent module with {depth} layer(s), but "
                                 f"the model's next weighted layers are {[type(l).__name__ + ' ' + l.name for l in take]}")
            groups.append(Group(owner, tuple(l.name for l in take)))
            i += depth
        elif set(ts) <= {"weight", "bias"} and "weight" in ts:
            if isinstance(layer, Recurrent):
                raise ValueError(f"{source}: torch module {label} holds {sorted(ts)} (nn.Linear or nn.Embedding), "
                                 f"but the model's next weighted layer is the recurrent layer {layer.name}")
            groups.append(Group(owner, (layer.name,)))
            i += 1
        else:
            raise ValueError(f"{source}: torch module {label}: tensors {sorted(ts)} are not those of nn.RNN, "
                             "nn.LSTM, nn.GRU, nn.Linear or nn.Embedding")
    if i < len(weighted):
        raise ValueError(f"{source}: no torch module for layer(s) {[l.name for l in weighted[i:]]}; the state_dict's "
                         f"modules are {list(by_owner(tensors))} and the model's weighted layers {names}")
    return groups


def from_state_dict(spec: StackSpec, tensors: dict[str, np.ndarray], dtype: str, source: str = "state_dict") -> Any:
    """The torch model a state_dict describes for ``spec``: its modules matched to the layers, its
    tensors loaded as they are."""
    groups = match_groups(spec, tensors, source)
    return load(empty(spec, groups, dtype), by_owner(tensors), source)


def _loss_and_accuracy(spec: StackSpec, y: Any, targets: Any) -> tuple[Any, Any]:
    import torch
    if spec.loss != "prob_ce":
        return torch_nn._loss_and_accuracy(spec, y, targets)
    loss = -torch.log(torch.gather(y, -1, targets.unsqueeze(-1))).mean()
    return loss, (y.argmax(dim=-1) == targets).double().mean()


def _inputs(spec: StackSpec, batch: Batch, dtype: str, device: Any = None) -> Any:
    import torch
    if spec.takes_ids:
        return torch.tensor(batch.inputs, dtype=torch.int64, device=device)
    return torch.tensor(batch.inputs, dtype=_dtype(dtype), device=device, requires_grad=True)


def summed_tensors(spec: StackSpec, one_bias: bool = False) -> dict[str, int]:
    """Canonical tensors torch trains as a sum of two (a simple RNN's or LSTM's bias_ih + bias_hh): each receives
    the sum's whole gradient and is stepped by the optimiser on its own (reference/summed.py). None for a model
    built with ``one_bias`` (bias_hh frozen at zero)."""
    out: dict[str, int] = {}
    if one_bias:
        return out
    shapes = stack.param_shapes(spec)
    for layer in spec.recurrent_layers:
        for d in layer.directions:
            for entry in torch_nn.TABLES[layer.cell]:
                name = f"{layer.name}/{d}/{entry.canonical}"
                if len(entry.framework) > 1 and name in shapes:
                    out[name] = len(entry.framework)
    return out


def _dropout_masks(batch: Batch, dt: Any, device: Any = None) -> dict[str, Any]:
    import torch
    return {n: torch.tensor(m, dtype=dt, device=device) for n, m in (batch.dropout_masks or {}).items()}


def _mask(batch: Batch, device: Any) -> Any:
    """The padded batch's mask on ``device`` (None without lengths)."""
    import torch
    return None if batch.lengths is None else torch.from_numpy(stack.lengths_mask(batch)).to(device)


def kernels(spec: StackSpec) -> frozenset[str]:
    """The torch kernel families the model runs on a CUDA device (verify/device.py): cuBLAS matmuls (nn.Linear, the
    loop of torch ops), and cuDNN's RNN kernels where a group is a native nn.RNN/LSTM/GRU."""
    native = any(torch_nn.is_native(group_spec(spec, g)) for g in default_groups(spec)
                 if isinstance(_layers(spec)[g.layers[0]], Recurrent))
    return frozenset({"matmul"} | ({"cudnn_rnn"} if native else set()))


def forward_backward(model: Any, spec: StackSpec, batch: Batch, dtype: str) -> dict[str, Any]:
    """``run``'s torch half: every tensor (inputs, states, targets, masks) made on the model's device, the forward
    pass, the loss's backward; the tensors by role, still on that device."""
    import torch
    masked = batch.lengths is not None
    reason = supports(spec, masked)
    if reason:
        raise ValueError(f"torch cannot run {spec.name!r}: {reason}")
    dt, dev = _dtype(dtype), torch_nn.device_of(model)
    model.eval()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    x = _inputs(spec, batch, dtype, dev)
    states = {n: torch.tensor(v, dtype=dt, device=dev, requires_grad=True)
              for n, v in stack.initial_states(spec, batch).items()}
    targets = _targets(spec, batch, dt, dev)
    with warnings.catch_warnings():  # "LSTM with projections is not supported with oneDNN": a speed notice
        warnings.simplefilter("ignore", UserWarning)
        y, outputs, finals = model(x, states, _mask(batch, dev), _dropout_masks(batch, dt, dev))
    loss, acc = _loss_and_accuracy(spec, y, targets)
    loss.backward()
    return {"x": x, "states": states, "y": y, "outputs": outputs, "finals": finals, "loss": loss, "accuracy": acc}


def run(model: Any, spec: StackSpec, batch: Batch, dtype: str) -> dict[str, dict[str, np.ndarray]]:
    """Outputs, final states, loss, accuracy and gradients as torch computes them (the batch's dropout masks
    applied where it has them), on the model's device, brought back as NumPy arrays."""
    t = forward_backward(model, spec, batch, dtype)
    host = torch_nn.to_numpy
    gradient = gradients(spec, model.groups, {g.module: {n: host(p.grad.double()) for n, p in
                                                         model.owner(g).named_parameters()} for g in model.groups})
    if not spec.takes_ids:
        gradient["inputs"] = host(t["x"].grad)
    for n, v in t["states"].items():
        gradient[initial_state_gradient_name(n)] = host(v.grad)
    output = {"prediction": host(t["y"]), **{n: host(v) for n, v in t["outputs"].items()}}
    return {"output": output, "state": {n: host(t["finals"][n]) for n in stack.state_shapes(spec, 1)},
            "loss": {"loss": host(t["loss"])}, "accuracy": {"accuracy": host(t["accuracy"])},
            "gradient": gradient}


def train(model: Any, spec: StackSpec, batches: list[Batch], lr: float, dtype: str,
          progress: Callable[[str], None] = lambda s: None, after_step: Callable[[int], None] = lambda i: None,
          optimizer: str = "sgd", hyper: dict | None = None, carry_state: bool = False,
          clip_norms: list[float] | None = None) -> list[float]:
    """``optimizer`` (torch.optim, built as adapters/torch_optim.py does; reference/optimizers.py names them and
    their torch rules) on the model's loss, one step per batch, with the batch's dropout masks; the losses.
    ``hyper``: hyper-parameters by the reference's names, ``clip_norm``/``clip_value`` clipping before each step.

    ``carry_state``: batch s >= 1 starts from the final states the model reached on batch s - 1, detached
    (truncated backpropagation through time); ``batches[0]``'s initial state is the first start.
    ``after_step(i)`` is called once step ``i`` has updated the model (the verifier reads the weights there).
    ``clip_norms``, when given, receives the global norm torch.nn.utils.clip_grad_norm_ returned at each step
    (with ``clip_norm`` only)."""
    import torch
    dt, dev = _dtype(dtype), torch_nn.device_of(model)
    params = [p for p in model.parameters() if p.requires_grad]  # a frozen bias_hh (``one_bias``) is not stepped
    opt, clip = torch_optim.optimizer(params, optimizer, lr, hyper or {})
    losses: list[float] = []
    carried: dict[str, Any] | None = None
    model.train()
    try:
        # the broken variant's nn.Dropout draws from torch's generator: seeded here, the caller's state restored
        with torch_optim.one_thread(), torch.random.fork_rng(devices=torch_nn.rng_devices(dev)), \
                warnings.catch_warnings():
            torch.manual_seed(0)
            warnings.simplefilter("ignore", UserWarning)  # oneDNN's projection notice, as in ``run``
            for i, b in enumerate(batches):
                reason = supports(spec, b.lengths is not None)
                if reason:
                    raise ValueError(f"torch cannot run {spec.name!r}: {reason}")
                states = carried if carried is not None else \
                    {n: torch.tensor(v, dtype=dt, device=dev) for n, v in stack.initial_states(spec, b).items()}
                x = torch.tensor(b.inputs, dtype=torch.int64 if spec.takes_ids else dt, device=dev)
                opt.zero_grad(set_to_none=True)
                y, _, finals = model(x, states, _mask(b, dev), _dropout_masks(b, dt, dev))
                loss, _ = _loss_and_accuracy(spec, y, _targets(spec, b, dt, dev))
                loss.backward()
                norm = clip()
                if clip_norms is not None and norm is not None:
                    clip_norms.append(norm)
                opt.step()
                if carry_state:
                    carried = {n: v.detach() for n, v in finals.items()}
                losses.append(float(loss.detach()))
                after_step(i)
                if (i + 1) % max(1, len(batches) // 4) == 0 or i + 1 == len(batches):
                    progress(f"torch: step {i + 1}/{len(batches)}, training loss {losses[-1]:.4f}")
    finally:
        model.eval()
    return losses


def _targets(spec: StackSpec, batch: Batch, dt: Any, device: Any = None) -> Any:
    import torch
    return torch.tensor(batch.targets, dtype=dt if spec.loss in ("mse", "clipped_log_ce") else torch.int64,
                        device=device)


def run_module(module: Any, spec: StackSpec, groups: list[Group], batch: Batch, dtype: str
               ) -> dict[str, dict[str, np.ndarray]]:
    """A user's own nn.Module run through its real ``forward(x)``: prediction, loss, accuracy and the
    gradients of its parameters and inputs (its states and inner outputs are its own business)."""
    import torch
    dt = _dtype(dtype)
    module = module.to(dt)
    module.eval()
    for p in module.parameters():
        p.grad = torch.zeros_like(p)
    x = _inputs(spec, batch, dtype)
    y = module(x)
    if isinstance(y, (tuple, list)):
        y = y[0]  # (output, state) as torch's own layers return it
    if not isinstance(y, torch.Tensor):
        raise ValueError(f"the module's forward returned {type(y).__name__}; expected a tensor (the prediction)")
    output = {"prediction": y.detach().numpy()}
    targets = torch.tensor(batch.targets, dtype=dt if spec.loss in ("mse", "clipped_log_ce") else torch.int64)
    try:
        loss, acc = _loss_and_accuracy(spec, y, targets)
    except (RuntimeError, IndexError):  # a prediction of the wrong shape: its output check says so
        return {"output": output}
    loss.backward()
    owners = {g.module: {n: (p.grad if p.grad is not None else torch.zeros_like(p)).double().numpy()
                         for n, p in module.get_submodule(g.module).named_parameters(recurse=False)}
              for g in groups}
    gradient = gradients(spec, groups, owners)
    if not spec.takes_ids:
        gradient["inputs"] = x.grad.numpy()
    return {"output": output, "loss": {"loss": loss.detach().numpy()}, "accuracy": {"accuracy": acc.detach().numpy()},
            "gradient": gradient}
