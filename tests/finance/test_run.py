"""``run_greeks(GreeksConfig)``: the command's work as a library call; bad values named."""

import pytest

from scoregrad.errors import ParameterError, SampleSizeError
from scoregrad.finance.run import GreeksConfig, run_greeks


def test_grid_rows_and_z_scores():
    rows, results, skipped = run_greeks(
        GreeksConfig(spot="95,105", strike="100,110", n=20_000, greeks="delta,gamma", seed=1)
    )
    assert len(rows) == 2 * 2 * 3 and set(results) == {"lr"} and skipped == {"lr": {}}
    for r in rows:
        assert r["exact"] is not None and abs(r["lr_z"]) < 4.42  # false alarm 1e-5 each


def test_pathwise_skips_are_explained():
    _, results, skipped = run_greeks(GreeksConfig(n=4000, method="all", greeks="delta,gamma"))
    assert "gamma" not in results["pathwise"].greeks
    assert "kink" in skipped["pathwise"]["gamma"]


@pytest.mark.parametrize(
    "change,name",
    [
        (dict(rate=float("nan")), "rate"),
        (dict(vol=float("nan")), "vol"),
        (dict(div=float("inf")), "div"),
        (dict(maturity=float("nan")), "maturity"),
        (dict(spot="nan"), "spot"),
        (dict(strike="100,nan"), "strike"),
        (dict(model="heston", heston=dict(xi=float("nan"))), "xi"),
        (dict(model="merton", merton=dict(jump_mean=float("nan"))), "jump_mean"),
    ],
)
def test_nan_parameters_are_named_not_blamed_on_f(change, name):
    """`greeks --rate nan` said "f returned non-finite values... Fix f"; now the parameter."""
    with pytest.raises(ParameterError, match=rf"^{name} = ") as e:
        run_greeks(GreeksConfig(n=1000, **change))
    assert "f returned" not in str(e.value)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_is_refused_by_name(dtype):
    with pytest.raises(ParameterError, match="half precision"):
        run_greeks(GreeksConfig(n=1000, dtype=dtype))


def test_qmc_with_one_replicate_is_a_clear_error():
    """`greeks --sampler qmc --replicates 1` printed a traceback (a bare ValueError)."""
    with pytest.raises(SampleSizeError, match="at least 2 replicates"):
        run_greeks(GreeksConfig(n=1000, sampler="qmc", replicates=1))


def test_unknown_dtype_and_payoff():
    with pytest.raises(ParameterError, match="--dtype"):
        run_greeks(GreeksConfig(n=1000, dtype="int8"))
    with pytest.raises(ParameterError, match="unknown payoff"):
        run_greeks(GreeksConfig(n=1000, payoff="swaption"))
