"""Evaluator: deferred finiteness checks (one sum per evaluation, looked at once in finish)."""

import pytest
import torch

from scoregrad.core.evaluate import Evaluator
from scoregrad.errors import FunctionOutputError

BIG = torch.finfo(torch.float32).max


def test_finite_values_whose_sum_overflows_are_accepted():
    """A sum of finite values that overflows only sends the check to the per-sample test."""
    ev = Evaluator(lambda x: torch.full(x.shape[:1], BIG), defer_checks=True)
    ev(torch.zeros(8, 1))
    assert not all(torch.isfinite(t) for t in ev.finite_totals())
    ev.finish()  # no error: every value is finite


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_value_is_refused_in_finish(bad):
    ev = Evaluator(lambda x: torch.tensor([1.0, bad, 2.0]), defer_checks=True)
    ev(torch.zeros(3, 1))
    with pytest.raises(FunctionOutputError):
        ev.finish()
