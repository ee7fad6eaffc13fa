"""The report: frozen dataclasses, independent of how they are rendered."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Allowance:
    """An element passes when |x - ref| <= atol + rtol * |ref|; ``why`` says where the numbers come from."""

    atol: float
    rtol: float
    why: str         # this tensor's numbers: scale, measured noise floor, near-tie count
    rule: str = ""   # the policy rule applied, the same words for every tensor it covers


@dataclass(frozen=True)
class Check:
    """One tensor of one side compared with another side."""

    framework: str            # "tensorflow", "torch", or "tensorflow~torch" for framework-vs-framework
    against: str              # "reference" or the other framework
    quantity: str             # output, state, loss, accuracy, gradient, parameter
    name: str                 # canonical name
    shape: tuple[int, ...]
    dtype: str                # dtype the framework computed in
    max_abs: float
    max_rel: float | None     # elementwise |x - ref| / |ref|; None where ref == 0 and x != ref
    norm_rel: float           # normwise: max |x - ref| / max |ref| (infinity norms; max |x - ref| if ref is all zero)
    ulp: float                # largest distance in units in the last place of ``dtype``
    where: tuple[int, ...]    # index of the largest absolute error
    n_bad: int
    n_total: int
    allowed: Allowance
    ok: bool
    first_bad_step: int | None = None
    gate: str | None = None   # gate block of the largest error, for gate-stacked tensors
    bad_gates: tuple[str, ...] = ()
    value: float | None = None            # scalar checks (loss, accuracy): the value this side computed
    reference_value: float | None = None  # ... and the value of the side it is compared with
    diagnosis: str | None = None          # what a mismatching parameter holds instead ("... transposed")
    layer: str | None = None              # the layer in each side's own names ("keras lstm / torch rnn1")
    used: float = 0.0                     # share of the allowance used: max |x - ref| / (atol + rtol |ref|)
    # Filled only for a failing check, so that a passing report stays small: the share used per time step
    # (maximum over the other axes) and per gate block (in the order of gate_names), for the HTML plots.
    step_errors: tuple[float, ...] = ()
    gate_errors: tuple[float, ...] = ()
    gate_names: tuple[str, ...] = ()      # every gate block's name, in block order, where gate_errors is filled


@dataclass(frozen=True)
class Report:
    model: str
    dtype: str
    seed: int
    frameworks: tuple[str, ...]
    versions: dict[str, str]
    checks: tuple[Check, ...]
    notes: tuple[str, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return "equivalent" if all(c.ok for c in self.checks) else "mismatch"

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)

    def find(self, framework: str, quantity: str, name: str) -> Check:
        """The check for one tensor (KeyError naming what exists when absent)."""
        for c in self.checks:
            if (c.framework, c.quantity, c.name) == (framework, quantity, name):
                return c
        raise KeyError(f"no check {framework}/{quantity}/{name}; have "
                       f"{sorted({(c.framework, c.quantity, c.name) for c in self.checks})}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d = {"verdict": self.verdict, **d}
        return d
