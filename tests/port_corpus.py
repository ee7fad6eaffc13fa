"""Users' port pairs: a Keras 3 model saved as ``model.keras`` and its hand-made torch port ``port.pt``.

Everything here is built from the frameworks' DOCUMENTED layouts (Keras ``layer.get_weights()``, torch's
module parameter names), never through the project's ``adapters/`` or ``verify/`` code, so that the
acceptance tests (``tests/test_user_models.py``) check the project against an independent port.

* ``CASES``: case name -> ``build(dir, seed) -> Built``. Each writes, into ``dir``:
  ``model.keras`` (a ``keras.Sequential([keras.Input(...), ...])`` with weights drawn uniform in +-0.5 per
  element, so gates differ and biases are non-zero), ``port.pt`` (``torch.save`` of an OrderedDict of
  float32 tensors: the CORRECT port), ``user_port_<case>.py`` (a ``build()`` factory of the ``nn.Module``
  whose ``state_dict()`` keys are port.pt's and whose ``forward(x)`` returns the prediction) and one
  ``user_port_<case>_<variant>.py`` per buggy forward of ``BUGGY_FORWARDS`` that applies.
* ``BUGS``: bug name -> injector ``(state_dict, built) -> Broken | None`` (None: does not apply to the case).
  ``write_bug`` saves the broken state_dict as ``port_<bug>.pt``.

Layout translations (torch stores (out, in), Keras (in, out)):

    Keras kernel (D, G*H), recurrent_kernel (H, G*H)  ->  weight_ih_l{k} = kernel.T, weight_hh_l{k} = recurrent_kernel.T
    Keras bias (G*H)                                  ->  bias_ih_l{k} = bias, bias_hh_l{k} = 0 (torch adds both)
    Keras GRU bias (2, 3H) (reset_after=True)          ->  bias_ih = bias[0], bias_hh = bias[1]
    gate blocks: LSTM Keras i,f,c,o = torch i,f,g,o;  GRU Keras z,r,h -> torch r,z,n (first two blocks swapped)
    Bidirectional: backward layer -> the same names with suffix ``_reverse``
    two stacked Keras LSTMs -> one nn.LSTM(num_layers=2): the second is ``..._l1``
    Embedding embeddings (V, E) -> weight (V, E);  Dense kernel (in, out) -> Linear weight (out, in) = kernel.T
"""
from __future__ import annotations

import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

STEPS = 5

# torch block j holds Keras block ORDER[cell][j]
ORDER = {"simple_rnn": (0,), "lstm": (0, 1, 2, 3), "gru": (1, 0, 2)}


def _keras():
    from adapters.tf_import import import_tf  # only imports TF quietly
    return import_tf()[1]


@dataclass(frozen=True)
class Rnn:
    keras: str            # the Keras layer (for a bidirectional layer: the Bidirectional wrapper)
    cell: str             # simple_rnn, lstm, gru
    torch: str            # the torch module holding it ("encoder.0.rnn")
    level: int            # its torch layer index: weight_ih_l{level}
    bidirectional: bool
    units: int

    def keys(self, direction: str = "fw") -> list[str]:
        suffix = f"l{self.level}" + ("_reverse" if direction == "bw" else "")
        return [f"{self.torch}.{w}_{suffix}" for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]

    @property
    def directions(self) -> tuple[str, ...]:
        return ("fw", "bw") if self.bidirectional else ("fw",)


@dataclass(frozen=True)
class Built:
    case: str
    dir: Path
    inputs: tuple                    # ("float", D) or ("ids", V)
    steps: int | None                # the Keras Input's time axis (None: any length)
    rnns: tuple[Rnn, ...]
    embedding: tuple[str, str] | None    # (Keras layer, torch key)
    dense: tuple[str, str, tuple[int, int]]  # (Keras layer, torch module, Keras kernel shape (in, out))
    activation: str                  # the Dense head's activation
    masked: bool
    sequence_output: bool
    variants: tuple[str, ...]        # buggy forwards written for this case

    @property
    def model(self) -> Path:
        return self.dir / "model.keras"

    @property
    def port(self) -> Path:
        return self.dir / "port.pt"

    @property
    def module(self) -> str:
        return f"user_port_{self.case}"

    @property
    def factory(self) -> str:
        return f"{self.module}:build"

    def variant_factory(self, variant: str) -> str:
        return f"{self.module}_{variant}:build"

    @property
    def output_size(self) -> int:
        return self.dense[2][1]

    def state_dict(self) -> OrderedDict:
        import torch
        return torch.load(self.port, weights_only=True)


# ---------------------------------------------------------------------------------------------- porting

def _blocks(m: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    """Gate blocks stacked along axis 0 (torch's layout), rearranged: block j of the result is block order[j]."""
    h = m.shape[0] // len(order)
    return np.concatenate([m[j * h:(j + 1) * h] for j in order], axis=0)


def _rnn_tensors(cell: str, weights: list[np.ndarray], keys: list[str]) -> dict[str, np.ndarray]:
    kernel, recurrent_kernel, bias = weights
    order = ORDER[cell]
    if cell == "gru":
        assert bias.shape == (2, kernel.shape[1]), "GRU reset_after=True: bias rows input, recurrent"
        b_ih, b_hh = bias[0], bias[1]
    else:
        b_ih, b_hh = bias, np.zeros_like(bias)
    values = (_blocks(kernel.T, order), _blocks(recurrent_kernel.T, order), _blocks(b_ih, order),
              _blocks(b_hh, order))
    return dict(zip(keys, values))


def _port(model, rnns: list[Rnn], embedding, dense) -> OrderedDict:
    """The correct torch state_dict, keys in the order torch's modules register them."""
    import torch
    out: dict[str, np.ndarray] = {}
    if embedding:
        out[embedding[1] + ".weight"] = model.get_layer(embedding[0]).get_weights()[0]
    for r in rnns:
        layer = model.get_layer(r.keras)
        if r.bidirectional:
            out.update(_rnn_tensors(r.cell, layer.forward_layer.get_weights(), r.keys("fw")))
            out.update(_rnn_tensors(r.cell, layer.backward_layer.get_weights(), r.keys("bw")))
        else:
            out.update(_rnn_tensors(r.cell, layer.get_weights(), r.keys("fw")))
    kernel, bias = model.get_layer(dense[0]).get_weights()
    out[dense[1] + ".weight"], out[dense[1] + ".bias"] = kernel.T, bias
    return OrderedDict((k, torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32))) for k, v in out.items())


def _set_weights(model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            layer.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype(w.dtype) for w in weights])


# ------------------------------------------------------------------------------------- buggy forwards

HEADER = '"""A user\'s hand-written torch port of model.keras (case {case}); load port.pt into build()."""\n'

# Each edits the lines of a correct module source that end with its marker; it applies when that changes the source.
BUGGY_FORWARDS: dict[str, tuple[str, Callable[[str], str | None]]] = {
    "wrong_last_step": ("# last step", lambda line: line.replace("[:, -1", "[:, 0")),
    "forgot_batch_first": ("# batch_first", lambda line: line.replace(", batch_first=True", "")),
    "missing_activation": ("# activation", lambda line: None),
}


def _variant(source: str, variant: str) -> str | None:
    marker, edit = BUGGY_FORWARDS[variant]
    lines = []
    for line in source.splitlines():
        if line.rstrip().endswith(marker):
            line = edit(line)
        if line is not None:
            lines.append(line)
    new = "\n".join(lines) + "\n"
    return None if new == source else new


# ------------------------------------------------------------------------------------------------ cases

def _finish(case: str, d: Path, seed: int, model, rnns: list[Rnn], dense: tuple[str, str], source: str,
            embedding: tuple[str, str] | None = None, masked: bool = False) -> Built:
    import torch
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    _set_weights(model, seed ^ zlib.crc32(case.encode()))
    model.save(d / "model.keras")
    sd = _port(model, rnns, embedding, dense)
    torch.save(sd, d / "port.pt")
    source = HEADER.format(case=case) + source.lstrip("\n")
    (d / f"user_port_{case}.py").write_text(source)
    variants = []
    for v in BUGGY_FORWARDS:
        buggy = _variant(source, v)
        if buggy is not None:
            (d / f"user_port_{case}_{v}.py").write_text(buggy)
            variants.append(v)
    head = model.get_layer(dense[0])
    kernel_shape = tuple(head.get_weights()[0].shape)
    inner = getattr(head, "layer", head)  # TimeDistributed(Dense)
    shape = model.input_shape
    first = model.layers[0]
    inputs = ("ids", first.input_dim) if embedding else ("float", shape[-1])
    return Built(case, d, inputs, shape[1], tuple(rnns), embedding, (dense[0], dense[1], kernel_shape),
                 inner.get_config()["activation"], masked, len(model.output_shape) == 3, tuple(variants))


def simple_rnn(d: Path, seed: int = 0) -> Built:
    keras = _keras()
    model = keras.Sequential([keras.Input((STEPS, 3)), keras.layers.SimpleRNN(4, name="simple_rnn"),
                              keras.layers.Dense(2, name="dense")], name="simple_rnn")
    return _finish("simple_rnn", d, seed, model, [Rnn("simple_rnn", "simple_rnn", "rnn", 0, False, 4)],
                   ("dense", "head"), """
import torch
from torch import nn


class Port(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(3, 4, batch_first=True)  # batch_first
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(out[:, -1])  # last step


def build():
    return Port()
""")


def lstm(d: Path, seed: int = 0) -> Built:
    keras = _keras()
    model = keras.Sequential([keras.Input((STEPS, 3)), keras.layers.LSTM(5, name="lstm"),
                              keras.layers.Dense(3, activation="tanh", name="dense")], name="lstm")
    return _finish("lstm", d, seed, model, [Rnn("lstm", "lstm", "rnn1", 0, False, 5)], ("dense", "head"), """
import torch
from torch import nn


class Port(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn1 = nn.LSTM(3, 5, batch_first=True)  # batch_first
        self.head = nn.Linear(5, 3)

    def forward(self, x):
        out, (h, c) = self.rnn1(x)
        y = self.head(out[:, -1])  # last step
        y = torch.tanh(y)  # activation
        return y


def build():
    return Port()
""")


def gru(d: Path, seed: int = 0) -> Built:
    keras = _keras()  # any sequence length; a square head (4 -> 4)
    model = keras.Sequential([keras.Input((None, 2)), keras.layers.GRU(4, name="gru"),
                              keras.layers.Dense(4, name="dense")], name="gru")
    return _finish("gru", d, seed, model, [Rnn("gru", "gru", "gru", 0, False, 4)], ("dense", "head"), """
import torch
from torch import nn


class Port(nn.Module):
    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(2, 4, batch_first=True)  # batch_first
        self.head = nn.Linear(4, 4)

    def forward(self, x):
        out, _ = self.gru(x)
        return self.head(out[:, -1])  # last step


def build():
    return Port()
""")


def bidirectional_lstm_concat(d: Path, seed: int = 0) -> Built:
    keras = _keras()
    model = keras.Sequential([keras.Input((STEPS, 3)),
                              keras.layers.Bidirectional(keras.layers.LSTM(3, name="lstm"), name="bidirectional"),
                              keras.layers.Dense(2, activation="softmax", name="dense")],
                             name="bidirectional_lstm_concat")
    return _finish("bidirectional_lstm_concat", d, seed, model,
                   [Rnn("bidirectional", "lstm", "birnn", 0, True, 3)], ("dense", "classifier"), """
import torch
from torch import nn


class Port(nn.Module):
    def __init__(self):
        super().__init__()
        self.birnn = nn.LSTM(3, 3, batch_first=True, bidirectional=True)  # batch_first
        self.classifier = nn.Linear(6, 2)

    def forward(self, x):
        out, _ = self.birnn(x)
        h = self.birnn.hidden_size
        # Keras Bidirectional: forward after the last step, backward after the whole reversed sequence
        last = torch.cat([out[:, -1, :h], out[:, 0, h:]], dim=-1)  # last step
        y = self.classifier(last)
        y = torch.softmax(y, dim=-1)  # activation
        return y


def build():
    return Port()
""")


def bidirectional_gru_sum(d: Path, seed: int = 0) -> Built:
    keras = _keras()
    model = keras.Sequential([keras.Input((STEPS, 4)),
                              keras.layers.Bidirectional(keras.layers.GRU(5, return_sequences=True, name="gru"),
                                                         merge_mode="sum", name="bidirectional"),
                              keras.layers.Dense(3, name="dense")], name="bidirectional_gru_sum")
    return _finish("bidirectional_gru_sum", d, seed, model, [Rnn("bidirectional", "gru", "rnn", 0, True, 5)],
                   ("dense", "out"), """
import torch
from torch import nn


class Port(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(4, 5, batch_first=True, bidirectional=True)  # batch_first
        self.out = nn.Linear(5, 3)

    def forward(self, x):
        seq, _ = self.rnn(x)
        h = self.rnn.hidden_size
        return self.out(seq[..., :h] + seq[..., h:])  # merge_mode="sum"


def build():
    return Port()
""")


def stacked_lstm_as_num_layers_2(d: Path, seed: int = 0) -> Built:
    keras = _keras()
    model = keras.Sequential([keras.Input((STEPS, 2)), keras.layers.LSTM(4, return_sequences=True, name="lstm"),
                              keras.layers.LSTM(4, name="lstm_1"),
                              keras.layers.Dense(2, activation="tanh", name="dense")],
                             name="stacked_lstm_as_num_layers_2")
    return _finish("stacked_lstm_as_num_layers_2", d, seed, model,
                   [Rnn("lstm", "lstm", "lstm", 0, False, 4), Rnn("lstm_1", "lstm", "lstm", 1, False, 4)],
                   ("dense", "fc"), """
import torch
from torch import nn


class Port(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(2, 4, num_layers=2, batch_first=True)  # batch_first
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        out, _ = self.lstm(x)
        y = self.fc(out[:, -1])  # last step
        y = torch.tanh(y)  # activation
        return y


def build():
    return Port()
""")


def gru_over_lstm(d: Path, seed: int = 0) -> Built:
    keras = _keras()
    model = keras.Sequential([keras.Input((STEPS, 3)), keras.layers.LSTM(6, return_sequences=True, name="lstm"),
                              keras.layers.GRU(4, name="gru"),
                              keras.layers.Dense(2, activation="sigmoid", name="dense")], name="gru_over_lstm")
    return _finish("gru_over_lstm", d, seed, model,
                   [Rnn("lstm", "lstm", "lstm", 0, False, 6), Rnn("gru", "gru", "gru", 0, False, 4)],
                   ("dense", "head"), """
import torch
from torch import nn


class Port(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(3, 6, batch_first=True)  # batch_first
        self.gru = nn.GRU(6, 4, batch_first=True)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        seq, _ = self.lstm(x)
        seq, _ = self.gru(seq)
        y = self.head(seq[:, -1])  # last step
        y = torch.sigmoid(y)  # activation
        return y


def build():
    return Port()
""")


def embedding_lstm_softmax(d: Path, seed: int = 0) -> Built:
    keras = _keras()
    model = keras.Sequential([keras.Input((STEPS,), dtype="int32"), keras.layers.Embedding(12, 4, name="embedding"),
                              keras.layers.LSTM(5, name="lstm"),
                              keras.layers.Dense(3, activation="softmax", name="dense")],
                             name="embedding_lstm_softmax")
    return _finish("embedding_lstm_softmax", d, seed, model, [Rnn("lstm", "lstm", "rnn1", 0, False, 5)],
                   ("dense", "head"), """
import torch
from torch import nn


class Port(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(12, 4)
        self.rnn1 = nn.LSTM(4, 5, batch_first=True)  # batch_first
        self.head = nn.Linear(5, 3)

    def forward(self, x):
        out, _ = self.rnn1(self.embed(x.long()))
        y = self.head(out[:, -1])  # last step
        y = torch.softmax(y, dim=-1)  # activation
        return y


def build():
    return Port()
""", embedding=("embedding", "embed"))


def masking_gru_timedistributed(d: Path, seed: int = 0) -> Built:
    keras = _keras()  # any sequence length; Keras's default zero_output_for_mask=False
    model = keras.Sequential([keras.Input((None, 3)), keras.layers.Masking(0.0, name="masking"),
                              keras.layers.GRU(4, return_sequences=True, name="gru"),
                              keras.layers.TimeDistributed(keras.layers.Dense(2, activation="tanh", name="dense"),
                                                           name="time_distributed")],
                             name="masking_gru_timedistributed")
    return _finish("masking_gru_timedistributed", d, seed, model, [Rnn("gru", "gru", "rnn", 0, False, 4)],
                   ("time_distributed", "proj"), """
import torch
from torch import nn


class Port(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.GRU(3, 4, batch_first=True)
        self.proj = nn.Linear(4, 2)

    def forward(self, x):
        # Keras Masking(0.0): a step whose features are all 0 is skipped; the GRU keeps its state there and
        # (zero_output_for_mask=False) repeats its last output, which for a GRU is that state.
        keep = (x != 0.0).any(dim=-1)
        h = x.new_zeros(1, x.shape[0], self.rnn.hidden_size)
        outs = []
        for t in range(x.shape[1]):
            _, h_new = self.rnn(x[:, t:t + 1], h)
            h = torch.where(keep[:, t].view(1, -1, 1), h_new, h)
            outs.append(h[0])
        y = self.proj(torch.stack(outs, dim=1))
        y = torch.tanh(y)  # activation
        return y


def build():
    return Port()
""", masked=True)


def dropout_between(d: Path, seed: int = 0) -> Built:
    keras = _keras()
    model = keras.Sequential([keras.Input((STEPS, 4)),
                              keras.layers.SimpleRNN(4, return_sequences=True, name="simple_rnn"),
                              keras.layers.Dropout(0.3, name="dropout"), keras.layers.LSTM(3, name="lstm"),
                              keras.layers.Dropout(0.2, name="dropout_1"), keras.layers.Dense(2, name="dense")],
                             name="dropout_between")
    return _finish("dropout_between", d, seed, model,
                   [Rnn("simple_rnn", "simple_rnn", "rnn1", 0, False, 4), Rnn("lstm", "lstm", "rnn2", 0, False, 3)],
                   ("dense", "fc"), """
import torch
from torch import nn


class Port(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn1 = nn.RNN(4, 4, batch_first=True)  # batch_first
        self.drop1 = nn.Dropout(0.3)
        self.rnn2 = nn.LSTM(4, 3, batch_first=True)
        self.drop2 = nn.Dropout(0.2)
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        seq, _ = self.rnn1(x)
        seq, _ = self.rnn2(self.drop1(seq))
        return self.fc(self.drop2(seq[:, -1]))  # last step


def build():
    return Port()
""")


def nested_names(d: Path, seed: int = 0) -> Built:
    keras = _keras()
    model = keras.Sequential([keras.Input((STEPS,), dtype="int32"), keras.layers.Embedding(10, 3, name="embedding"),
                              keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True, name="lstm"),
                                                         name="bidirectional"),
                              keras.layers.GRU(4, name="gru"),
                              keras.layers.Dense(2, activation="tanh", name="dense")], name="nested_names")
    return _finish("nested_names", d, seed, model,
                   [Rnn("bidirectional", "lstm", "encoder.0.rnn", 0, True, 3),
                    Rnn("gru", "gru", "encoder.1.rnn", 0, False, 4)], ("dense", "decoder.proj"), """
from collections import OrderedDict

import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        out, _ = self.rnn(x)
        return out


class Port(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(10, 3)
        self.encoder = nn.ModuleList([
            Block(nn.LSTM(3, 3, batch_first=True, bidirectional=True)),  # batch_first
            Block(nn.GRU(6, 4, batch_first=True)),
        ])
        self.decoder = nn.Sequential(OrderedDict(proj=nn.Linear(4, 2)))

    def forward(self, x):
        seq = self.embedding(x.long())
        for block in self.encoder:
            seq = block(seq)
        y = self.decoder(seq[:, -1])  # last step
        y = torch.tanh(y)  # activation
        return y


def build():
    return Port()
""", embedding=("embedding", "embedding"))


CASES: dict[str, Callable[..., Built]] = {f.__name__: f for f in (
    simple_rnn, lstm, gru, bidirectional_lstm_concat, bidirectional_gru_sum, stacked_lstm_as_num_layers_2,
    gru_over_lstm, embedding_lstm_softmax, masking_gru_timedistributed, dropout_between, nested_names)}


# What applies to each case: the bugs of BUGS and the buggy forwards of BUGGY_FORWARDS. Written out so that tests can
# be parametrised without building the models; ``tests/test_user_models.py`` checks it against the injectors.
APPLIES: dict[str, tuple[str, ...]] = {
    "simple_rnn": ("transposed_square_kernel", "bias_in_both", "wrong_last_step", "forgot_batch_first"),
    "lstm": ("permuted_gates", "bias_in_both", "wrong_last_step", "forgot_batch_first", "missing_activation"),
    "gru": ("transposed_square_kernel", "permuted_gates", "wrong_last_step", "forgot_batch_first"),
    "bidirectional_lstm_concat": ("permuted_gates", "bias_in_both", "swapped_directions", "wrong_last_step",
                                  "forgot_batch_first", "missing_activation"),
    "bidirectional_gru_sum": ("permuted_gates", "swapped_directions", "forgot_batch_first"),
    "stacked_lstm_as_num_layers_2": ("permuted_gates", "bias_in_both", "wrong_last_step", "forgot_batch_first",
                                     "missing_activation"),
    "gru_over_lstm": ("permuted_gates", "bias_in_both", "wrong_last_step", "forgot_batch_first",
                      "missing_activation"),
    "embedding_lstm_softmax": ("permuted_gates", "bias_in_both", "shifted_embedding_rows", "wrong_last_step",
                               "forgot_batch_first", "missing_activation"),
    "masking_gru_timedistributed": ("permuted_gates", "missing_activation"),
    "dropout_between": ("transposed_square_kernel", "permuted_gates", "bias_in_both", "wrong_last_step",
                        "forgot_batch_first"),
    "nested_names": ("permuted_gates", "bias_in_both", "swapped_directions", "shifted_embedding_rows",
                     "wrong_last_step", "forgot_batch_first", "missing_activation"),
}


def build_case(case: str, d: Path, seed: int = 0) -> Built:
    return CASES[case](Path(d), seed)


# ------------------------------------------------------------------------------------------- bad ports

@dataclass(frozen=True)
class Broken:
    state_dict: OrderedDict
    expected: str        # the canonical parameter the report must flag
    word: str            # what its diagnosis must say
    what: str            # the bug, in words
    layer: tuple[str, str]   # (Keras layer, torch module) of the expected parameter
    gates: tuple[str, ...] = ()  # canonical gate blocks that moved (LSTM i,f,g,o; GRU z,r,h)


def _copy(sd: OrderedDict) -> OrderedDict:
    return OrderedDict((k, v.clone()) for k, v in sd.items())


def _permute_rows(t, order: tuple[int, ...]):
    import torch
    return torch.from_numpy(np.ascontiguousarray(_blocks(t.numpy(), order)))


def transposed_square_kernel(sd: OrderedDict, b: Built) -> Broken | None:
    """A square matrix copied without its .T: a simple RNN's weight_hh, else a square Dense head."""
    new = _copy(sd)
    for r in b.rnns:
        if r.cell == "simple_rnn":
            key = r.keys("fw")[1]
            new[key] = sd[key].T.contiguous()
            return Broken(new, f"{r.keras}/fw/recurrent_kernel", "transposed",
                          f"{key} = Keras {r.keras}.recurrent_kernel without .T", (r.keras, r.torch))
    keras_name, module, (n_in, n_out) = b.dense
    if n_in == n_out:
        new[module + ".weight"] = sd[module + ".weight"].T.contiguous()
        return Broken(new, f"{keras_name}/kernel", "transposed",
                      f"{module}.weight = Keras {keras_name}.kernel without .T", (keras_name, module))
    return None


def permuted_gates(sd: OrderedDict, b: Built) -> Broken | None:
    """The last gated layer's blocks in the wrong order: LSTM i,f,g,o stored i,g,f,o; GRU Keras z,r,h copied as is."""
    gated = [r for r in b.rnns if r.cell in ("lstm", "gru")]
    if not gated:
        return None
    r = gated[-1]
    order = (0, 2, 1, 3) if r.cell == "lstm" else (1, 0, 2)
    new = _copy(sd)
    for direction in r.directions:
        for key in r.keys(direction):
            new[key] = _permute_rows(sd[key], order)
    what = "LSTM blocks stored i,g,f,o" if r.cell == "lstm" else "GRU blocks copied in Keras's z,r,h order"
    return Broken(new, f"{r.keras}/fw/kernel", "gate blocks permuted", f"{r.torch}: {what}", (r.keras, r.torch),
                  ("f", "g") if r.cell == "lstm" else ("z", "r"))


def bias_in_both(sd: OrderedDict, b: Built) -> Broken | None:
    """The Keras bias copied into bias_ih AND bias_hh (first LSTM or simple RNN layer, every direction)."""
    single = [r for r in b.rnns if r.cell in ("lstm", "simple_rnn")]
    if not single:
        return None
    r = single[0]
    new = _copy(sd)
    for direction in r.directions:
        _, _, b_ih, b_hh = r.keys(direction)
        new[b_hh] = sd[b_ih].clone()
    return Broken(new, f"{r.keras}/fw/bias", "both bias_ih and bias_hh",
                  f"{r.torch}: Keras {r.keras}.bias in bias_ih and bias_hh", (r.keras, r.torch))


def swapped_directions(sd: OrderedDict, b: Built) -> Broken | None:
    """A bidirectional layer's forward weights under ``_reverse`` and the backward ones without it."""
    bidi = [r for r in b.rnns if r.bidirectional]
    if not bidi:
        return None
    r = bidi[0]
    new = _copy(sd)
    for fw, bw in zip(r.keys("fw"), r.keys("bw")):
        new[fw], new[bw] = sd[bw].clone(), sd[fw].clone()
    return Broken(new, f"{r.keras}/fw/kernel", "directions swapped", f"{r.torch}: forward and _reverse swapped",
                  (r.keras, r.torch))


def shifted_embedding_rows(sd: OrderedDict, b: Built) -> Broken | None:
    """An off-by-one padding index: a zero row inserted at id 0, every row moved down by one, the last dropped."""
    if not b.embedding:
        return None
    import torch
    keras_name, module = b.embedding
    key = module + ".weight"
    new = _copy(sd)
    w = sd[key]
    new[key] = torch.cat([torch.zeros_like(w[:1]), w[:-1]]).contiguous()
    return Broken(new, f"{keras_name}/embeddings", "rows shifted", f"{key}: rows shifted by one", (keras_name, module))


BUGS: dict[str, Callable[[OrderedDict, Built], Broken | None]] = {f.__name__: f for f in (
    transposed_square_kernel, permuted_gates, bias_in_both, swapped_directions, shifted_embedding_rows)}


def write_bug(b: Built, bug: str) -> tuple[Path, Broken] | None:
    """``port_<bug>.pt`` in the case's directory, or None when the bug does not apply to the case."""
    import torch
    broken = BUGS[bug](b.state_dict(), b)
    if broken is None:
        return None
    path = b.dir / f"port_{bug}.pt"
    torch.save(broken.state_dict, path)
    return path, broken


# ------------------------------------------------------------------------------------------------ data

def sample_inputs(b: Built, batch: int = 4, seed: int = 0, steps: int = STEPS, gaps: bool = True) -> np.ndarray:
    """Inputs a user would feed: ids (int64) for an Embedding, floats in +-1 otherwise; a Masking model's batch
    has all-zero steps at the end of a sequence (padding) and, with ``gaps``, also at the start of one and in the
    middle of another (Keras skips any masked step; torch's packed sequences only trailing ones)."""
    rng = np.random.default_rng(seed)
    if b.inputs[0] == "ids":
        return rng.integers(0, b.inputs[1], (batch, steps)).astype(np.int64)
    x = rng.uniform(-1.0, 1.0, (batch, steps, b.inputs[1])).astype(np.float32)
    if b.masked:
        if batch > 1:
            x[1, -2:] = 0.0
        if batch > 2 and gaps:
            x[2, 0] = 0.0
        if batch > 3 and gaps:
            x[3, steps // 2] = 0.0
        if batch > 4 and not gaps:
            x[4, -3:] = 0.0
    return x


def sample_targets(b: Built, batch: int = 4, seed: int = 1, steps: int = STEPS) -> np.ndarray:
    """Targets shaped like the prediction (float32), or class ids (int64, (B,) or (B, T)) for a softmax head."""
    rng = np.random.default_rng(seed)
    lead = (batch, steps) if b.sequence_output else (batch,)
    if b.activation == "softmax":
        return rng.integers(0, b.output_size, lead).astype(np.int64)
    return rng.uniform(-0.9, 0.9, (*lead, b.output_size)).astype(np.float32)
