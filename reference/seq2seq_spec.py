"""Spec and batch of the recomputation article's models (seeds/002): encoder-decoder, attention, bidirectional."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

KINDS = ("seq2seq", "attention", "bidirectional")
CELLS = ("simple_rnn", "lstm")


@dataclass(frozen=True)
class Seq2SeqSpec:
    """One of the article's three models, built on TF1 BasicRNNCell (one kernel over [x, h]) or, with
    ``cell="lstm"``, on TF1 BasicLSTMCell (the book's choice; ``forget_bias`` added at run time).

    * ``seq2seq``: an encoder over ``input_steps`` one-hot steps; the output layer reads the encoder's
      last output for the first symbol, then a decoder cell, started from the encoder's final state,
      runs ``output_steps - 1`` steps fed the one-hot of the previous symbol.
    * ``attention``: the same with both cells wrapped in TF1's AttentionCellWrapper
      (``attn_length`` slots of size ``attn_size``, scoring vectors of size ``attn_vec_size``).
    * ``bidirectional``: forward and backward cells over ``input_steps`` steps; the output layer reads
      TF1's last concatenated output [forward after all steps, backward after the last input only].

    ``decoding`` is how the reported evaluation feeds the decoder: ``greedy`` (the one-hot of its own
    argmax, as the article evaluates) or ``teacher`` (the previous target symbol; training always
    uses this). Loss: the article's clipped log loss on softmax outputs; accuracy: argmax.
    """

    family: ClassVar[str] = "reference.seq2seq"

    name: str
    kind: str = "attention"
    input_size: int = 12          # vocabulary of the inputs (one-hot)
    output_size: int = 12         # vocabulary of the outputs (one-hot)
    hidden_size: int = 32
    input_steps: int = 7
    output_steps: int = 4
    attn_size: int = 0            # 0: the cell's output size, TF's default
    attn_vec_size: int = 0        # 0: attn_size, TF's default
    attn_length: int = 0          # 0: input_steps (the article's attn_length)
    cell: str = "simple_rnn"
    forget_bias: float = 1.0      # BasicLSTMCell's run-time forget bias (TF1's default); LSTM only
    decoding: str = "greedy"
    loss: str = "clipped_log_ce"
    accuracy: str = "argmax"
    description: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if self.cell not in CELLS:
            raise ValueError(f"unknown cell {self.cell!r}; expected one of {', '.join(CELLS)}")
        if self.decoding not in ("greedy", "teacher"):
            raise ValueError(f"unknown decoding {self.decoding!r}; expected greedy or teacher")
        for what in ("input_size", "output_size", "hidden_size", "input_steps", "output_steps"):
            if getattr(self, what) < 1:
                raise ValueError(f"{what} must be >= 1, got {getattr(self, what)}")

    @property
    def A(self) -> int:  # noqa: N802 (the wrapper's attention size, as in the math)
        return self.attn_size or self.hidden_size

    @property
    def V(self) -> int:  # noqa: N802
        return self.attn_vec_size or self.A

    @property
    def L(self) -> int:  # noqa: N802
        return self.attn_length or self.input_steps


@dataclass(frozen=True)
class Seq2SeqBatch:
    """One-hot inputs (B, T_in, D) and one-hot targets (B, T_out, O) (bidirectional: (B, O)).

    ``fed_back``: integer symbols (B, T_out - 1) to feed the decoder instead of its own argmax; the
    verifier sets it to the symbols a framework decoded, so that the reference recomputes along the
    same path and a near-tie decision that rounded the other way cannot derail the comparison
    (the decisions themselves are checked separately).
    """

    inputs: np.ndarray
    targets: np.ndarray
    fed_back: np.ndarray | None = field(default=None)

    def astype(self, dtype: np.dtype) -> "Seq2SeqBatch":
        return Seq2SeqBatch(self.inputs.astype(dtype), self.targets.astype(dtype), self.fed_back)

    def with_fed_back(self, symbols: np.ndarray | None) -> "Seq2SeqBatch":
        return Seq2SeqBatch(self.inputs, self.targets, None if symbols is None else np.asarray(symbols, np.int64))

    def __len__(self) -> int:
        return self.inputs.shape[0]
