"""Cross-framework equivalence verifier for recurrent networks: ``python -m verify``."""
