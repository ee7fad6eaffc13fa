"""When every framework agrees with every other and all disagree with the reference, the report says so."""
import numpy as np

from verify import engine, render


def test_a_wrong_reference_is_named_the_odd_one_out(monkeypatch) -> None:
    real = engine.reference_and_allowances

    def wrong_reference(*args, **kwargs):
        ref, allow = real(*args, **kwargs)
        ref["output"]["prediction"] = ref["output"]["prediction"] + 1e-2  # a reference bug
        return ref, allow
    monkeypatch.setattr(engine, "reference_and_allowances", wrong_reference)
    report = engine.compare_model("rnn", ("tensorflow", "torch"), "float64", 0)
    note = [n for n in report.notes if n.startswith("the reference is the odd one out")]
    assert report.verdict == "mismatch" and note, render.table(report)
    assert "tensorflow and torch agree with each other" in note[0] and "output prediction" in note[0], note
    assert note[0] in render.failures(report)


def test_one_wrong_framework_is_not_blamed_on_the_reference(monkeypatch) -> None:
    from adapters import torch_stack
    real = torch_stack.run

    def wrong(*args, **kwargs):
        results = real(*args, **kwargs)
        results["output"]["prediction"] = results["output"]["prediction"] + 1e-2
        return results
    monkeypatch.setattr(torch_stack, "run", wrong)
    report = engine.compare_model("rnn", ("tensorflow", "torch"), "float64", 0)
    assert report.verdict == "mismatch"
    assert not any(n.startswith("the reference is the odd one out") for n in report.notes), report.notes
    assert report.find("tensorflow", "output", "prediction").ok and not np.isnan(report.checks[0].max_abs)
