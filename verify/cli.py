"""Command line: argparse, then library calls, then exit codes (0 equivalent, 1 mismatch, 2 bad usage or input)."""
from __future__ import annotations

import argparse
import sys

EXIT_OK, EXIT_MISMATCH, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad usage or bad input: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m verify", description="Check that recurrent networks compute the same thing in "
                                                      "TensorFlow/Keras, PyTorch and a float64 NumPy reference.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="list the built-in models, one per line")
    c = sub.add_parser("compare", help="compare frameworks against the reference on a built-in model")
    c.add_argument("--model", required=True, help="a model from `python -m verify list`")
    c.add_argument("--frameworks", help="comma-separated subset of the model's frameworks (default: all of them)")
    c.add_argument("--dtype", default="float32", help="dtype the frameworks compute in: float32 or float64")
    c.add_argument("--seed", type=int, default=0, help="seed for weights and data (default 0)")
    c.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH")
    c.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def _cmd_list() -> int:
    from verify import zoo
    width = max(map(len, zoo.MODELS))
    for name, entry in zoo.MODELS.items():
        print(f"{name:<{width}}  {entry.spec.description}")
    return EXIT_OK


def _cmd_compare(args: argparse.Namespace) -> int:
    from verify import engine, render, zoo

    if args.model not in zoo.MODELS:
        raise UsageError(f"unknown model {args.model!r}; expected one of: {', '.join(zoo.MODELS)}")
    available = zoo.MODELS[args.model].frameworks
    if args.frameworks is None:
        frameworks = available
    else:
        frameworks = tuple(dict.fromkeys(f.strip() for f in args.frameworks.split(",") if f.strip()))
        unknown = [f for f in frameworks if f not in available]
        if unknown or not frameworks:
            raise UsageError(f"framework(s) {', '.join(unknown) or repr(args.frameworks)} not available for model "
                             f"{args.model!r}; expected a comma-separated subset of: {', '.join(available)}")
    if args.dtype not in engine.DTYPES:
        raise UsageError(f"unknown dtype {args.dtype!r}; expected one of: {', '.join(engine.DTYPES)}")
    json_file = None
    if args.json:  # opened before the work, so a bad path costs nothing
        try:
            json_file = open(args.json, "w", encoding="utf-8")
        except OSError as e:
            raise UsageError(f"cannot write JSON report to {args.json}: {e.strerror}") from None
    progress = (lambda s: None) if args.quiet else (lambda s: print(f"... {s}", file=sys.stderr, flush=True))
    try:
        report = engine.compare_model(args.model, frameworks, args.dtype, args.seed, progress)
        print(render.table(report))
        if json_file is not None:
            json_file.write(render.to_json(report) + "\n")
    finally:
        if json_file is not None:
            json_file.close()
    return EXIT_OK if report.verdict == "equivalent" else EXIT_MISMATCH


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.command == "list":
            return _cmd_list()
        return _cmd_compare(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, KeyError) as e:  # bad input found by the library: one line, no traceback
        msg = e.args[0] if e.args else repr(e)
        print(f"error: {msg}", file=sys.stderr)
        return EXIT_USAGE
