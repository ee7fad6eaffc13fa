"""Hypothesis profiles: ``dev`` (quick, random) by default; ``ci`` (derandomised) when CI is set.

``VERIFY_EXAMPLES=N`` runs N examples per property (e.g. 1000 for a soak of the float32 policy).
"""
import os

from hypothesis import HealthCheck, settings

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
settings.register_profile("dev", max_examples=15, **_COMMON)
settings.register_profile("ci", max_examples=25, derandomize=True, print_blob=True, **_COMMON)
if os.environ.get("VERIFY_EXAMPLES"):
    settings.register_profile("many", max_examples=int(os.environ["VERIFY_EXAMPLES"]), **_COMMON)
    settings.load_profile("many")
else:
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
