"""The odd one out: when every framework agrees with every other and all of them disagree with the reference,
the suspect is the reference (or a layout table all the adapters share), not the frameworks."""
from __future__ import annotations

from verify.report import Check


def odd_one_out(checks: tuple[Check, ...] | list[Check]) -> list[str]:
    """A note naming the tensors on which >= 2 frameworks fail against the reference while every pair agrees."""
    against_ref: dict[tuple[str, str], dict[str, bool]] = {}
    pairs: dict[tuple[str, str], list[bool]] = {}
    for c in checks:
        key = (c.quantity, c.name)
        if c.quantity == "parameter":
            continue
        if c.against == "reference":
            against_ref.setdefault(key, {})[c.framework] = c.ok
        elif "~" in c.framework:
            pairs.setdefault(key, []).append(c.ok)
    suspects = [key for key, sides in against_ref.items()
                if len(sides) >= 2 and not any(sides.values()) and pairs.get(key) and all(pairs[key])]
    if not suspects:
        return []
    frameworks = sorted({fw for key in suspects for fw in against_ref[key]})
    shown = ", ".join(f"{q} {n}" for q, n in suspects[:6]) + (" ..." if len(suspects) > 6 else "")
    return [f"the reference is the odd one out: {' and '.join(frameworks)} agree with each other but not with the "
            f"reference on {len(suspects)} tensor(s) ({shown}); suspect the reference, or a layout table every "
            "adapter shares, before the frameworks"]
