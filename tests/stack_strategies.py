"""Hypothesis strategies for layer stacks, as our tests use them: the public ones in verify/strategies.py.

Every drawn case has weights uniform per element (so gates differ), non-zero biases, a non-zero initial
value for every state, batch >= 3 and >= 2 steps; Masking and mask_zero inputs carry trailing padding.
"""
from __future__ import annotations

from verify.strategies import StackCase, make_case, recurrent_layers, stack_specs

# the name our tests have always called it by
make_stack_case = make_case

__all__ = ["StackCase", "make_stack_case", "recurrent_layers", "stack_specs"]
