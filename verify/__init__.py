"""Cross-framework equivalence verifier for recurrent networks: ``python -m verify``, or ``compare_models`` in tests."""
from verify.api import assert_equivalent, compare_models

__all__ = ["compare_models", "assert_equivalent"]
