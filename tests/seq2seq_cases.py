"""Small seeded cases of the article's models for the tests: odd sizes so that transposes show."""
from __future__ import annotations

import numpy as np

from reference.params import init_params
from reference.seq2seq_spec import Seq2SeqBatch, Seq2SeqSpec


def small_spec(kind: str, decoding: str = "greedy", **kw: object) -> Seq2SeqSpec:
    sizes = dict(input_size=5, output_size=4, hidden_size=3, input_steps=4, output_steps=3, attn_size=2,
                 attn_vec_size=3, attn_length=3)
    sizes.update(kw)
    return Seq2SeqSpec(f"small_{kind}", kind=kind, decoding=decoding, **sizes)  # type: ignore[arg-type]


def small_case(spec: Seq2SeqSpec, seed: int, batch: int = 4, scale: float = 0.8) -> tuple[dict, Seq2SeqBatch]:
    rng = np.random.default_rng(seed)
    params = init_params(spec, rng, scale=scale)
    x = np.eye(spec.input_size)[rng.integers(0, spec.input_size, (batch, spec.input_steps))]
    lead = (batch,) if spec.kind == "bidirectional" else (batch, spec.output_steps)
    y = np.eye(spec.output_size)[rng.integers(0, spec.output_size, lead)]
    return params, Seq2SeqBatch(x, y)
