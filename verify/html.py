"""The report as one self-contained HTML page: every check in a table, and plots of where each failure starts."""
from __future__ import annotations

import base64
import io
import math
from html import escape

from verify import render
from verify.report import Check, Report

HEADER = ["framework", "quantity", "name", "shape", "max_abs", "norm_rel", "used", "atol", "rtol", "bad", "step",
          "gate", "result"]

STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 .equivalent { color: #1a7f37; } h1 .mismatch { color: #c62828; }
pre { background: #f6f8fa; padding: .8em; overflow-x: auto; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; white-space: nowrap; }
th { background: #eee; position: sticky; top: 0; }
td.n { text-align: right; font-family: monospace; }
tr.bad td { background: #fde7e7; }
tr.bad td.r { color: #c62828; font-weight: bold; }
.failure { margin: 1.5em 0; padding-top: .5em; border-top: 1px solid #ddd; }
.failure img { margin-right: 1em; vertical-align: top; }
.caption { color: #555; font-size: 13px; }
""".strip()


def _cells(c: Check) -> list[str]:
    step = "-" if c.first_bad_step is None else str(c.first_bad_step)
    gate = ",".join(c.bad_gates) or c.gate or "-"
    used = f"{c.used:.3g}" if math.isfinite(c.used) else "inf"
    return [c.framework, c.quantity, c.name, "x".join(map(str, c.shape)) or "()", render._num(c.max_abs),
            render._num(c.norm_rel), used, render._num(c.allowed.atol), render._num(c.allowed.rtol),
            f"{c.n_bad}/{c.n_total}", step, gate, "ok" if c.ok else "MISMATCH"]


def _table(report: Report) -> list[str]:
    numeric = {"max_abs", "norm_rel", "used", "atol", "rtol", "bad", "step"}
    lines = ["<table>", "<tr>" + "".join(f"<th>{h}</th>" for h in HEADER) + "</tr>"]
    for i, c in enumerate(report.checks):
        cells = []
        for head, text in zip(HEADER, _cells(c)):
            cls = ' class="n"' if head in numeric else ' class="r"' if head == "result" else ""
            body = escape(text)
            if head == "name" and not c.ok:  # the failing row leads to its plots below
                body = f'<a href="#check-{i}">{body}</a>'
            if head == "atol":  # where the allowance comes from, on hover
                cls += f' title="{escape(c.allowed.why)}"'
            cells.append(f"<td{cls}>{body}</td>")
        lines.append(("<tr>" if c.ok else '<tr class="bad">') + "".join(cells) + "</tr>")
    lines.append("</table>")
    return lines


def _plottable(values: tuple[float, ...]) -> tuple[list[float], float | None, list[int]]:
    """The values to draw (NaN where infinite), the bottom of a logarithmic y axis (None for a linear one), and
    the indices whose share is infinite (a non-finite value or a zero allowance), marked apart since no axis
    holds them."""
    infinite = [i for i, v in enumerate(values) if not math.isfinite(v)]
    positive = [v for v in values if math.isfinite(v) and v > 0] + [1.0]  # the allowance line is always shown
    if max(positive) / min(positive) < 100:
        return [v if math.isfinite(v) else math.nan for v in values], None, infinite
    # on a log axis a step with no error at all is drawn on the bottom edge, a decade below any error, instead
    # of vanishing or passing for a small error
    floor = min(positive) / 10
    return [max(v, floor) if math.isfinite(v) else math.nan for v in values], floor, infinite


def _png(fig) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    # no Software entry, so that the same report gives the same bytes whatever matplotlib wrote it
    fig.savefig(buf, format="png", metadata={"Software": None})
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(title: str, ylabel: str, floor: float | None):
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6.4, 3.0), dpi=80, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=10, parse_math=False)  # a name is text: a "$" in it is no formula
    ax.set_ylabel(ylabel)
    if floor is not None:
        ax.set_yscale("log")
    ax.axhline(1.0, color="#c62828", linestyle="--", linewidth=1)
    return fig, ax


def _mark_infinite(ax, positions: list[int]) -> None:
    if positions:  # drawn on the top edge: x in data, y in axes coordinates
        ax.plot(positions, [1.0] * len(positions), "x", color="#c62828", markersize=8,
                transform=ax.get_xaxis_transform(), clip_on=False)


def _bottom(ax, floor: float | None) -> None:
    if floor is not None:  # after the data is drawn: fixing one limit stops autoscaling the other
        ax.set_ylim(bottom=floor)


def _step_plot(c: Check) -> str:
    drawn, floor, infinite = _plottable(c.step_errors)
    fig, ax = _figure(f"{c.quantity} {c.name}: share of the allowance used per time step",
                      "used (max over the other axes)", floor)
    ax.plot(range(len(drawn)), drawn, marker=".", color="#1f4e9c")
    _mark_infinite(ax, infinite)
    ax.set_xlabel("time step")
    ax.xaxis.get_major_locator().set_params(integer=True)
    _bottom(ax, floor)
    return _png(fig)


def _gate_plot(c: Check) -> str:
    drawn, floor, infinite = _plottable(c.gate_errors)
    fig, ax = _figure(f"{c.quantity} {c.name}: share of the allowance used per gate", "used (max over the block)",
                      floor)
    colors = ["#c62828" if not math.isfinite(v) or v > 1 else "#1f4e9c" for v in c.gate_errors]
    ax.bar(range(len(drawn)), [0 if math.isnan(v) else v for v in drawn], color=colors)
    # a Check built by hand may lack the names: the blocks' positions then
    names = c.gate_names if len(c.gate_names) == len(drawn) else [f"block {i}" for i in range(len(drawn))]
    ax.set_xticks(range(len(drawn)), names)
    _mark_infinite(ax, infinite)
    ax.set_xlabel("gate block")
    _bottom(ax, floor)
    return _png(fig)


def _failure(i: int, c: Check) -> list[str]:
    where = f" at index {c.where}" if c.where else ""
    step = f", first bad step {c.first_bad_step}" if c.first_bad_step is not None else ""
    gate = f", gate {','.join(c.bad_gates) or c.gate}" if c.gate else ""
    layer = f" ({c.layer})" if c.layer else ""
    lines = [f'<div class="failure" id="check-{i}">',
             f"<h3>{escape(f'{c.framework} vs {c.against}: {c.quantity} {c.name}{layer}')}</h3>",
             "<p>" + escape(f"max abs error {render._num(c.max_abs)}{where}{step}{gate}; {c.n_bad} of {c.n_total} "
                           f"elements exceed atol {render._num(c.allowed.atol)} + rtol {render._num(c.allowed.rtol)}")
             + "</p>",
             f'<p class="caption">{escape(c.allowed.why)}</p>']
    if c.diagnosis:
        lines.append(f"<p>&rarr; {escape(c.diagnosis)}</p>")
    if c.step_errors:
        lines.append(f'<img src="data:image/png;base64,{_step_plot(c)}" '
                     f'alt="{escape(f"{c.name}: share of the allowance used per time step")}">')
    if c.gate_errors:
        lines.append(f'<img src="data:image/png;base64,{_gate_plot(c)}" '
                     f'alt="{escape(f"{c.name}: share of the allowance used per gate")}">')
    if c.step_errors or c.gate_errors:
        lines.append('<p class="caption">used = max |x - ref| / (atol + rtol |ref|): above the dashed line at 1 an '
                     "element fails; on a logarithmic axis no error at all is drawn on the bottom edge; x on the top "
                     "edge: an infinite share (a non-finite value, or any difference where the allowance is 0)</p>")
    lines.append("</div>")
    return lines


def page(report: Report) -> str:
    """The whole page; the same report gives the same text."""
    # only here: the terminal report must not need matplotlib; Figure objects on the Agg canvas, never pyplot,
    # so that the caller's backend and pyplot's figure list are left alone and nothing stays open
    import matplotlib.style
    title = f"model {report.model} | dtype {report.dtype} | seed {report.seed}: {report.verdict}"
    lines = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{escape(title)}</title>", f"<style>\n{STYLE}\n</style>", "</head>", "<body>",
             f"<h1>model {escape(report.model)} | dtype {escape(report.dtype)} | seed {report.seed}: "
             f'<span class="{report.verdict}">{report.verdict}</span></h1>',
             f"<p>frameworks: {escape(', '.join(report.frameworks))}</p>"]
    if report.versions:
        lines.append("<p>versions: " + escape(", ".join(f"{k} {v}" for k, v in report.versions.items())) + "</p>")
    if report.notes:
        lines += ["<h2>Notes</h2>", "<ul>"] + [f"<li>{escape(n)}</li>" for n in report.notes] + ["</ul>"]
    lines += ["<h2>Summary</h2>", f"<pre>{escape(render.summary(report))}</pre>",
              f"<h2>Checks ({len(report.checks)}, {len(report.failures)} failed)</h2>"]
    lines += _table(report)
    lines.append('<p class="caption">norm_rel: max |x - ref| / max |ref|; used: the share of the allowance used, '
                 "max |x - ref| / (atol + rtol |ref|), above 1 fails; hover over atol for where the allowance "
                 "comes from.</p>")
    if report.failures:
        lines.append("<h2>Failures</h2>")
        # the library's default style, whatever the caller's rcParams: the same report draws the same pixels
        with matplotlib.style.context("default"):
            for i, c in enumerate(report.checks):
                if not c.ok:
                    lines += _failure(i, c)
    lines += ["</body>", "</html>"]
    return "\n".join(lines) + "\n"
