"""Command line: argparse, then library calls, then exit codes (0 equivalent, 1 mismatch, 2 bad usage or input,
3 could not complete)."""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import traceback

EXIT_OK, EXIT_MISMATCH, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3


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
    c = sub.add_parser("compare", help="compare frameworks against the reference: a built-in model, or your own files")
    c.add_argument("--model", help="a model from `python -m verify list`")
    c.add_argument("--all", action="store_true", help="every built-in model in turn: one summary line each and one "
                                                      "verdict (exit 1 if any mismatches, 3 if any cannot complete)")
    c.add_argument("--frameworks", help="comma-separated subset of the model's frameworks (default: all of them)")
    _user_model_args(c)
    c.add_argument("--inputs", metavar="X.npy", help="your own inputs (default: drawn from the model's input signature)")
    c.add_argument("--targets", metavar="Y.npy", help="targets for loss, accuracy and gradients (with --inputs)")
    c.add_argument("--dtype", default="float32", help="dtype the frameworks compute in: float32 or float64")
    c.add_argument("--seed", type=int, default=0, help="seed for weights and data (default 0)")
    c.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where torch (and Keras, where TensorFlow sees a GPU) runs with --model: cpu (default) or "
                        "cuda, checked at the precision its kernels round at there, TF32 included (README, GPU)")
    c.add_argument("--optimizer", choices=_optimizer_names(), metavar="NAME",
                   help="the trained models' optimiser, in each framework's own variant: "
                        f"{', '.join(_optimizer_names())} (default: the model's own, sgd for the article's; "
                        "README, Optimisers)")
    c.add_argument("--reproduce", action="store_true",
                   help="a tutorial's model (sum, echo, binary_addition, lm) trained for the tutorial's number of steps, "
                        "verified step by step, with the tutorial's headline figure beside each side's (minutes)")
    c.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH")
    c.add_argument("--html", metavar="PATH", help="also write the report as one HTML page to PATH: every check, and "
                                                  "plots of each failing tensor's error per time step and per gate")
    _ci_report_args(c)
    c.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    c.add_argument("--debug", action="store_true", help="when a run cannot complete, print the traceback")
    c.add_argument("--table", action="store_true", help="print every check, not just the summary")
    i = sub.add_parser("inspect", help="what a model file holds: layers, options, where each tensor goes")
    i.add_argument("file", help="a Keras file (.keras, .h5), torch weights (.pt, .pth, .safetensors) or a TF1 "
                                "checkpoint prefix")
    _tf1_options(i)
    i.add_argument("--json", action="store_true", help="print JSON instead of text")
    o = sub.add_parser("port", help="convert weights to another framework, verify, and write only if equivalent")
    o.add_argument("source", help="MODEL.keras, WEIGHTS.pt / .safetensors (with --like), or a TF1 checkpoint prefix")
    o.add_argument("--to", required=True, choices=("torch", "keras"), help="target framework")
    o.add_argument("--like", metavar="MODEL.keras", help="the Keras model whose architecture torch weights belong to")
    o.add_argument("-o", "--output", required=True, help="file to write (.pt, .safetensors or .keras)")
    _tf1_options(o)
    o.add_argument("--dtype", default="float32", help="dtype of the verification: float32 or float64")
    o.add_argument("--seed", type=int, default=0, help="seed for the verification inputs (default 0)")
    o.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    o.add_argument("--debug", action="store_true", help="when a run cannot complete, print the traceback")
    o.add_argument("--table", action="store_true", help="print every check, not just the summary")
    o.add_argument("--html", metavar="PATH", help="also write the verification report as one HTML page to PATH")
    _ci_report_args(o)
    _snapshot_parsers(sub)
    return p


def _optimizer_names() -> tuple[str, ...]:
    from reference.optimizers import NAMES  # numpy only: no framework is imported for the parser
    return NAMES


def _snapshot_parsers(sub: argparse._SubParsersAction) -> None:
    """``snapshot`` and ``check``: framework-upgrade regression checks (verify/snapshot.py, verify/check.py)."""
    s = sub.add_parser("snapshot", help="record a model's inputs, weights, every framework's results, the reference, "
                                        "the policy and the environment in a directory, for `check` after an upgrade")
    s.add_argument("--model", help="a model from `python -m verify list` (or random, with --seed)")
    s.add_argument("--frameworks", help="comma-separated subset of the model's frameworks (default: all of them)")
    _user_model_args(s)
    s.add_argument("--inputs", metavar="X.npy", help="your own inputs (with your own files)")
    s.add_argument("--targets", metavar="Y.npy", help="targets for your own inputs")
    s.add_argument("--dtype", default="float32", help="dtype the frameworks compute in: float32 or float64")
    s.add_argument("--seed", type=int, default=0, help="seed for weights and data (default 0)")
    s.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="directory to write snapshot.json and arrays.npz into (created if missing)")
    s.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    s.add_argument("--debug", action="store_true", help="when a run cannot complete, print the traceback")
    k = sub.add_parser("check", help="recompute a snapshot with the installed versions: drift per tensor, its "
                                     "direction, the changed environment; exit 1 beyond the policy")
    k.add_argument("snapshot", metavar="DIR", help="a directory written by `python -m verify snapshot`")
    k.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH")
    _ci_report_args(k)
    k.add_argument("--table", action="store_true", help="print every check, not just the summary")
    k.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    k.add_argument("--debug", action="store_true", help="when a run cannot complete, print the traceback")


def _ci_report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--junit", metavar="PATH", help="also write the report as JUnit XML to PATH (one test case per "
                                                   "check) for a CI server")
    p.add_argument("--markdown", metavar="PATH", help="also write a Markdown summary to PATH (for a CI job summary, "
                                                      "e.g. $GITHUB_STEP_SUMMARY)")


def _tf1_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--forget-bias", type=float, default=1.0,
                   help="TF1 checkpoints: BasicLSTMCell/LSTMCell forget_bias (not stored in a checkpoint; default 1.0)")
    p.add_argument("--activation", default="tanh", help="TF1 checkpoints: the cells' activation (default tanh)")


def _user_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keras", metavar="MODEL.keras", help="your Keras model (.keras or .h5): the architecture")
    p.add_argument("--torch", metavar="WEIGHTS.pt", help="your torch port: a state_dict (.pt/.pth) or .safetensors")
    p.add_argument("--torch-module", metavar="package.module:factory",
                   help="your own nn.Module, built by calling factory(); --torch weights are loaded into it "
                        "(this imports and runs your code)")
    p.add_argument("--tf1-checkpoint", metavar="PREFIX", help="a checkpoint written by tf.compat.v1.train.Saver")
    _tf1_options(p)


def _cmd_list() -> int:
    from verify import zoo
    width = max(map(len, zoo.MODELS))
    for name, entry in zoo.MODELS.items():
        print(f"{name:<{width}}  {entry.spec.description}")
    print(f"{'random':<{width}}  a layer stack drawn from --seed (cells, activations, embeddings, masks, "
          "directions, merge modes, TF1 cells and state layouts); the report names it")
    return EXIT_OK


def _open_report(path: str | None, what: str = "JSON") -> str | None:
    """Checked before the work, so a bad path costs nothing; written only at the end, atomically."""
    if not path:
        return None
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK) or os.path.isdir(path):
        raise UsageError(f"cannot write {what} report to {path}: "
                         f"{'it is a directory' if os.path.isdir(path) else 'no writable directory ' + directory}")
    return path


def _open_html(path: str | None) -> str | None:
    """As _open_report, and matplotlib (which draws the plots) checked before the work too."""
    if path:
        try:
            import matplotlib  # noqa: F401 - only whether it imports
        except ImportError as e:
            raise UsageError(f"--html needs matplotlib, which cannot be imported ({e}): pip install matplotlib "
                             "(or install this package's [frameworks] extra)") from None
    return _open_report(path, "HTML")


def _open_ci(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """--junit and --markdown paths, checked before the work as _open_report checks --json."""
    return _open_report(args.junit, "JUnit"), _open_report(args.markdown, "Markdown")


def _write_report(path: str | None, text: str, suffix: str = ".json") -> None:
    """The whole report or nothing: written beside the target, then renamed over it."""
    if path is None:
        return
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=suffix, dir=os.path.dirname(os.path.abspath(path)))
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text if text.endswith("\n") else text + "\n")
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's file is private (0600); a report is as readable as any file written
    os.replace(tmp, path)


def _progress(quiet: bool):
    return (lambda s: None) if quiet else (lambda s: print(f"... {s}", file=sys.stderr, flush=True))


def _finish(report, json_path: str | None, full: bool = False, html_path: str | None = None,
            junit_path: str | None = None, markdown_path: str | None = None) -> int:
    from verify import render
    # the page is drawn before anything is printed or written, so that a failure to draw it leaves no half result
    page = None
    if html_path:
        from verify import html
        page = html.page(report)
    ci = []  # rendered up front as well, for the same reason
    if junit_path:
        from verify.junit import junit
        ci.append((junit_path, junit(report), ".xml"))
    if markdown_path:
        from verify.markdown import markdown
        ci.append((markdown_path, markdown(report), ".md"))
    print(render.table(report) if full else render.summary(report))
    _write_report(json_path, render.to_json(report))
    if page is not None:
        _write_report(html_path, page, ".html")
    for path, text, suffix in ci:
        _write_report(path, text, suffix)
    return EXIT_OK if report.verdict == "equivalent" else EXIT_MISMATCH


def _cmd_compare_files(args: argparse.Namespace) -> int:
    from verify import api, engine
    if args.frameworks:
        raise UsageError("--frameworks applies to --model; with your own files the frameworks are the files given")
    if args.dtype not in engine.DTYPES:
        raise UsageError(f"unknown dtype {args.dtype!r}; expected one of: {', '.join(engine.DTYPES)}")
    if args.keras and args.tf1_checkpoint:
        raise UsageError("give --keras or --tf1-checkpoint, not both: one of them is the architecture")
    if args.tf1_checkpoint and args.torch_module:
        raise UsageError("--torch-module goes with --keras; with --tf1-checkpoint give --torch WEIGHTS.pt")
    json_path, html_path = _open_report(args.json), _open_html(args.html)
    junit_path, markdown_path = _open_ci(args)
    report = api.compare_files(keras=args.keras, torch=args.torch, torch_module=args.torch_module,
                               tf1_checkpoint=args.tf1_checkpoint, forget_bias=args.forget_bias,
                               activation=args.activation, inputs=args.inputs, targets=args.targets,
                               dtype=args.dtype, seed=args.seed, progress=_progress(args.quiet))
    return _finish(report, json_path, args.table, html_path, junit_path, markdown_path)


def _cmd_compare_all(args: argparse.Namespace) -> int:
    """``compare --all``: every zoo model, one line each; 1 if any mismatches, else 3 if any could not complete."""
    from verify import engine, every_model
    if args.model:
        raise UsageError("give --model NAME or --all, not both")
    given = [f"--{o}" for o in ("optimizer", "html", "junit", "markdown", "table", "reproduce") if getattr(args, o)]
    if given:
        raise UsageError(f"--all prints one line per model (and writes --json); {', '.join(given)} applies to one "
                         "--model")
    if args.dtype not in engine.DTYPES:
        raise UsageError(f"unknown dtype {args.dtype!r}; expected one of: {', '.join(engine.DTYPES)}")
    frameworks = None
    if args.frameworks is not None:
        frameworks = tuple(dict.fromkeys(f.strip() for f in args.frameworks.split(",") if f.strip()))
        known = ("tensorflow", "torch", "tf1")
        if not frameworks or any(f not in known for f in frameworks):
            raise UsageError(f"--frameworks {args.frameworks!r}: expected a comma-separated subset of {', '.join(known)}")
    json_path = _open_report(args.json)
    outcomes = every_model.run(args.dtype, args.seed, frameworks, _progress(args.quiet))
    for o in outcomes:
        if o.trace and args.debug:  # without --debug the model's line names the error
            sys.stderr.write(o.trace)
    print(every_model.summary(outcomes, args.dtype, args.seed))
    _write_report(json_path, every_model.to_json(outcomes, args.dtype, args.seed))
    verdict = every_model.verdict(outcomes)
    return {"equivalent": EXIT_OK, "mismatch": EXIT_MISMATCH}.get(verdict, EXIT_INCOMPLETE)


def _cmd_compare(args: argparse.Namespace) -> int:
    from verify import engine, zoo

    if args.device != "cpu" and (args.keras or args.tf1_checkpoint or args.torch or args.torch_module or args.all
                                 or args.reproduce):
        raise UsageError(f"--device {args.device} applies to one --model (built-in or random); --all, --reproduce and "
                         "your own files run on the CPU")
    if args.keras or args.tf1_checkpoint or args.torch or args.torch_module:
        if args.model:
            raise UsageError("give --model for a built-in model, or your own files (--keras, --torch, "
                             "--tf1-checkpoint), not both")
        return _cmd_compare_files(args)
    if args.inputs or args.targets:
        raise UsageError("--inputs and --targets apply to your own models (--keras or --tf1-checkpoint)")
    if args.all:
        return _cmd_compare_all(args)
    if not args.model:
        raise UsageError("the following arguments are required: --model NAME, or --keras MODEL.keras / "
                         "--tf1-checkpoint PREFIX with --torch WEIGHTS.pt")
    if args.model == "random":
        from verify import random_model
        available = random_model.entry(args.seed).frameworks
    elif args.model not in zoo.MODELS:
        raise UsageError(f"unknown model {args.model!r}; expected one of: {', '.join(zoo.MODELS)}, or random")
    else:
        available = zoo.MODELS[args.model].frameworks
    if args.optimizer is not None and (args.model == "random" or zoo.MODELS[args.model].train is None):
        trained = ", ".join(n for n, e in zoo.MODELS.items() if e.train is not None)
        raise UsageError(f"--optimizer applies to the trained models ({trained}); {args.model!r} is verified "
                         "untrained")
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
    if args.reproduce:
        from verify.reproduce import REPRODUCTIONS
        if args.model not in REPRODUCTIONS or args.optimizer is not None:
            raise UsageError(f"--reproduce applies to the tutorials' models ({', '.join(REPRODUCTIONS)}), each with "
                             f"its tutorial's optimiser; got --model {args.model}"
                             + (f" --optimizer {args.optimizer}" if args.optimizer else ""))
    if args.device != "cpu":
        from verify import device
        try:
            device.check(args.device, frameworks)  # no CUDA device: one line, before any work
        except ValueError as e:
            raise UsageError(str(e)) from None
    json_path, html_path = _open_report(args.json), _open_html(args.html)
    junit_path, markdown_path = _open_ci(args)
    if args.reproduce:
        from verify import reproduce, stage
        with stage.phase("reproducing"):
            report = reproduce.reproduce(args.model, frameworks, args.dtype, args.seed, _progress(args.quiet))
        return _finish(report, json_path, args.table, html_path, junit_path, markdown_path)
    report = engine.compare_model(args.model, frameworks, args.dtype, args.seed, _progress(args.quiet),
                                  optimizer=args.optimizer, device=args.device)
    return _finish(report, json_path, args.table, html_path, junit_path, markdown_path)


def _cmd_snapshot(args: argparse.Namespace) -> int:
    """Take the snapshot, write it, then read it back and rerun it (``check``): a snapshot that cannot be read,
    or that the same environment does not reproduce, is found now rather than after the upgrade."""
    from verify import check, engine, snapshot, zoo
    if args.dtype not in engine.DTYPES:
        raise UsageError(f"unknown dtype {args.dtype!r}; expected one of: {', '.join(engine.DTYPES)}")
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise UsageError(f"-o {args.output}: exists and is not a directory; expected a directory for the snapshot")
    progress = _progress(args.quiet)
    if args.keras or args.tf1_checkpoint or args.torch or args.torch_module:
        if args.model or args.frameworks:
            raise UsageError("give --model (and --frameworks) for a built-in model, or your own files (--keras, "
                             "--torch, --tf1-checkpoint), not both")
        if args.keras and args.tf1_checkpoint:
            raise UsageError("give --keras or --tf1-checkpoint, not both: one of them is the architecture")
        snap = snapshot.take_files(keras=args.keras, torch=args.torch, torch_module=args.torch_module,
                                   tf1_checkpoint=args.tf1_checkpoint, forget_bias=args.forget_bias,
                                   activation=args.activation, inputs=args.inputs, targets=args.targets,
                                   dtype=args.dtype, seed=args.seed, progress=progress)
    else:
        if args.inputs or args.targets:
            raise UsageError("--inputs and --targets apply to your own models (--keras or --tf1-checkpoint)")
        if not args.model:
            raise UsageError("the following arguments are required: --model NAME, or --keras MODEL.keras / "
                             "--tf1-checkpoint PREFIX with --torch WEIGHTS.pt")
        if args.model == "random":
            from verify import random_model
            available = random_model.entry(args.seed).frameworks
        elif args.model in zoo.MODELS:
            available = zoo.MODELS[args.model].frameworks
        else:
            raise UsageError(f"unknown model {args.model!r}; expected one of: {', '.join(zoo.MODELS)}, or random")
        frameworks = available if args.frameworks is None else \
            tuple(dict.fromkeys(f.strip() for f in args.frameworks.split(",") if f.strip()))
        unknown = [f for f in frameworks if f not in available]
        if unknown or not frameworks:
            raise UsageError(f"framework(s) {', '.join(unknown) or repr(args.frameworks)} not available for model "
                             f"{args.model!r}; expected a comma-separated subset of: {', '.join(available)}")
        snap = snapshot.take_model(args.model, frameworks, args.dtype, args.seed, progress)
    js, npz = snapshot.write(snap, args.output)
    progress("reading the snapshot back and rerunning it")
    outcome = check.check(args.output, progress)
    with open(js, encoding="utf-8") as fh:
        n_arrays = len(json.load(fh)["arrays"])
    print(f"snapshot {args.output}: {snapshot.JSON_NAME} {os.path.getsize(js)} bytes, {snapshot.ARRAYS_NAME} "
          f"{os.path.getsize(npz)} bytes ({n_arrays} arrays); model {snap.model} | dtype {snap.dtype} | seed "
          f"{snap.seed} | {', '.join(snap.frameworks)}")
    print(check.text(outcome).replace("verdict: unchanged", "read back and rerun: unchanged", 1))
    return EXIT_OK if outcome.exit_code == 0 else EXIT_MISMATCH


def _cmd_check(args: argparse.Namespace) -> int:
    from verify import check
    json_path = _open_report(args.json)
    junit_path, markdown_path = _open_ci(args)
    outcome = check.check(args.snapshot, _progress(args.quiet))
    ci = []  # rendered before anything is printed or written, so that a failure leaves no half result
    if junit_path:
        from verify.junit import junit
        ci.append((junit_path, junit(outcome.report), ".xml"))
    if markdown_path:
        from verify.markdown import markdown
        ci.append((markdown_path, markdown(outcome.report), ".md"))
    print(check.text(outcome, args.table))
    _write_report(json_path, check.to_json(outcome))
    for path, text, suffix in ci:
        _write_report(path, text, suffix)
    return EXIT_OK if outcome.exit_code == 0 else EXIT_MISMATCH


def _could_not_complete(e: BaseException, args: argparse.Namespace | None, debug: bool) -> int:
    """Exit 3: one line naming the phase and the framework, the traceback in a file (or on stderr with --debug),
    and the JSON report, when one was asked for, with verdict "error"."""
    from verify import stage
    phase, framework = stage.of(e) or ("setup", None)
    text = "".join(traceback.format_exception(e))
    if debug:
        sys.stderr.write(text)
        trace = "printed above"
    else:
        fd, trace = tempfile.mkstemp(prefix="verify-traceback-", suffix=".txt")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    first = (str(e).strip().splitlines() or [""])[0]
    who = f"{framework}: " if framework else ""
    print(f"error: could not complete: {who}{phase} raised {type(e).__name__}: {first} (traceback: {trace})",
          file=sys.stderr)
    json_path = getattr(args, "json", None)
    if isinstance(json_path, str):
        model = getattr(args, "model", None) or getattr(args, "keras", None) or getattr(args, "tf1_checkpoint", None)
        report = {"verdict": "error", "model": model, "dtype": getattr(args, "dtype", None),
                  "seed": getattr(args, "seed", None),
                  "error": {"phase": phase, "framework": framework, "type": type(e).__name__, "message": first,
                            "traceback": trace},
                  "checks": []}
        try:
            _write_report(json_path, json.dumps(report, indent=2))
        except OSError:
            pass
    return EXIT_INCOMPLETE


def _message(e: BaseException) -> str:
    """The exception's own words (a KeyError's str() would quote them)."""
    return str(e.args[0]) if e.args else repr(e)


def main(argv: list[str] | None = None) -> int:
    from adapters.errors import BadInput
    from verify import stage
    args = None
    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        args = _parser().parse_args(argv)
        if args.command == "list":
            return _cmd_list()
        if args.command == "inspect":
            from verify import inspect
            print(inspect.render(inspect.inspect_file(args.file, args.forget_bias, args.activation), args.json))
            return EXIT_OK
        if args.command == "port":
            from verify import port
            html_path = _open_html(args.html)
            junit_path, markdown_path = _open_ci(args)
            report = port.port(args.source, args.to, args.output, like=args.like, forget_bias=args.forget_bias,
                               activation=args.activation, dtype=args.dtype, seed=args.seed,
                               progress=_progress(args.quiet))
            return _finish(report, None, args.table, html_path, junit_path, markdown_path)
        if args.command == "snapshot":
            return _cmd_snapshot(args)
        if args.command == "check":
            return _cmd_check(args)
        return _cmd_compare(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BadInput as e:  # bad input, wherever it was found: one line, no traceback
        print(f"error: {_message(e)}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, KeyError) as e:
        if stage.of(e) is not None:  # raised inside a run: the tool's own failure, not the user's input
            return _could_not_complete(e, args, debug)
        print(f"error: {_message(e)}", file=sys.stderr)  # bad input found before any work
        return EXIT_USAGE
    except Exception as e:  # noqa: BLE001 - every other failure is reported as 'could not complete'
        return _could_not_complete(e, args, debug)
