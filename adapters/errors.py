"""Bad input, as every layer raises it: the one exception the command line turns into exit 2 wherever it arises."""
from __future__ import annotations


class BadInput(ValueError):
    """The user's files, options or module cannot be verified as given; the message is one line saying what was
    expected. Any other exception inside a run is the tool's own failure (exit 3, 'could not complete')."""
