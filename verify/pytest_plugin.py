"""pytest plugin: framework-upgrade snapshots checked in tests (verify_snapshot fixture and marker, --verify-update)."""
from __future__ import annotations

# Registered as the ``pytest11`` entry point ``verify``, or loaded with ``-p verify.pytest_plugin``. It imports only
# pytest and the standard library at start-up: the verifier (and with it numpy, TensorFlow, torch) is imported when
# a test checks a snapshot.
#
# * ``verify_snapshot("snapshots/lstm")``: the fixture is a callable; it checks the snapshot (``python -m verify
#   check``) and fails the test with the verdict and the failing rows when a framework left the policy or the
#   reference changed. A relative path is taken from the test file's directory.
# * ``@pytest.mark.verify_snapshot("snapshots/lstm", ...)``: the same for each directory named, after the test body.
# * ``--verify-update``: instead of checking, take each snapshot again with the installed versions and write it
#   over the old one (a deliberate upgrade of the record), and pass.

import os
from typing import Any, Callable

import pytest

MARKER = "verify_snapshot"


ENTRY_POINT = "verify"  # the pytest11 entry point's name in pyproject.toml


def pytest_addhooks(pluginmanager: Any) -> None:
    """Called when this module is registered. Loaded with ``-p verify.pytest_plugin`` while also installed as the
    entry point ``verify``, pytest would register the same module a second time under that name and stop with
    "Plugin already registered under a different name"; blocking the entry point's name makes the two ways of
    loading it interchangeable."""
    if pluginmanager.get_plugin(ENTRY_POINT) is None:
        pluginmanager.set_blocked(ENTRY_POINT)


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("verify", "rnn-equivalence-verifier snapshots")
    group.addoption("--verify-update", action="store_true", default=False,
                    help="verify: take the snapshots named by verify_snapshot again with the installed versions and "
                         "rewrite them, instead of checking them")


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", f"{MARKER}(*dirs): check each snapshot directory (python -m verify check) "
                                       "after the test; with --verify-update, rewrite it")


def _resolve(path: str | os.PathLike, node: Any) -> str:
    path = os.fspath(path)
    return path if os.path.isabs(path) else os.path.join(os.path.dirname(str(node.path)), path)


def _check_or_update(directory: str, update: bool) -> None:
    """Check one snapshot, failing the test with the check's own text; or rewrite it."""
    from adapters.errors import BadInput
    from verify import check, snapshot
    try:
        if update:
            snapshot.retake(directory)
            return
        outcome = check.check(directory)
    except BadInput as e:  # an unreadable snapshot: its one line, not a traceback into the verifier
        pytest.fail(f"verify_snapshot: {e}", pytrace=False)
    if outcome.exit_code != 0:
        verdict = check.verdict_line(outcome).removeprefix("verdict: ")
        pytest.fail(f"verify_snapshot {directory}: {verdict}\n{check.text(outcome)}", pytrace=False)


@pytest.fixture
def verify_snapshot(request: Any) -> Callable[[str | os.PathLike], None]:
    """A callable: ``verify_snapshot("DIR")`` checks the snapshot in DIR (relative to the test file), or rewrites it
    under ``--verify-update``."""
    update = bool(request.config.getoption("verify_update"))

    def run(directory: str | os.PathLike) -> None:
        _check_or_update(_resolve(directory, request.node), update)
    return run


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: Any) -> Any:
    """After the test body, check each directory its ``verify_snapshot`` markers name (a failing body fails first)."""
    result = yield
    update = bool(item.config.getoption("verify_update"))
    for mark in item.iter_markers(MARKER):
        if not mark.args:
            pytest.fail(f"@pytest.mark.{MARKER} needs a snapshot directory: @pytest.mark.{MARKER}(\"DIR\")",
                        pytrace=False)
        for directory in mark.args:
            _check_or_update(_resolve(directory, item), update)
    return result
