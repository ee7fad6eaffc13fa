"""Which phase of a run failed: an exception leaving a phase carries its name, so that the command line can tell
a run that could not complete (exit 3) from bad input found before any work (exit 2)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

ATTRIBUTE = "verify_phase"


@contextmanager
def phase(name: str, framework: str | None = None) -> Iterator[None]:
    """Run a phase; an exception escaping it is tagged with (phase, framework) unless an inner phase tagged it."""
    try:
        yield
    except BaseException as e:
        if not hasattr(e, ATTRIBUTE):
            setattr(e, ATTRIBUTE, (name, framework))
        raise


def of(error: BaseException) -> tuple[str, str | None] | None:
    """The (phase, framework) an exception escaped from, or None when it was raised outside every phase."""
    return getattr(error, ATTRIBUTE, None)
