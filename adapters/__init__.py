"""Adapters between framework models and the reference's canonical layout (see ``adapters.registry``)."""
