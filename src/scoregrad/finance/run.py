"""One ``scoregrad greeks`` run as a library call: a ``GreeksConfig`` in, table rows out.

``run_greeks(GreeksConfig(...))`` builds the model and payoff from plain values (comma-separated
lists of spots and strikes price a grid in one simulation), runs each requested method and
returns one row per option and quantity with the estimate, its standard error and the z-score
against the closed form where one exists. Bad values raise a ``ParameterError`` naming them.

>>> rows, results, skipped = run_greeks(GreeksConfig(n=20_000, greeks="delta", method="all"))
>>> [r["quantity"] for r in rows], sorted(results)
(['price', 'delta'], ['lr', 'mixed', 'pathwise'])
>>> abs(rows[1]["lr_z"]) < 4.42
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import ParameterError
from .greeks import DEFAULT_GREEKS, GREEK_NAMES, METHODS, estimate_greeks, exact_greeks
from .greeks import pathwise_problem as _pw_problem
from .models import MODELS
from .names import PAYOFF_NAMES
from .payoffs import (
    ArithmeticAsian,
    AssetDigital,
    Barrier,
    Call,
    CashDigital,
    GeometricAsian,
    Lookback,
    Put,
)

__all__ = ["GreeksConfig", "PAYOFF_NAMES", "build_payoff", "parse_floats", "run_greeks"]


@dataclass
class GreeksConfig:
    """Everything one run needs, as plain values (what the command's options give).

    ``spot`` and ``strike`` are numbers or comma-separated lists (a grid: spots down, strikes
    across); ``greeks`` a comma-separated list; ``method`` 'lr', 'pathwise', 'mixed' or 'all';
    ``cv`` 'none', 'terminal' or 'geometric'; ``dtype`` 'float64' or 'float32'; ``heston`` and
    ``merton`` the extra parameters of those models (kappa, mean_var, xi, corr, steps /
    jump_rate, jump_mean, jump_vol).
    """

    payoff: str = "call"
    model: str = "gbm"
    spot: str = "100"
    strike: str = "100"
    vol: float = 0.2
    rate: float = 0.05
    div: float = 0.0
    maturity: float = 1.0
    dates: int = 1
    n: int = 100_000
    method: str = "lr"
    greeks: str = ",".join(DEFAULT_GREEKS)
    sampler: str = "iid"
    replicates: int = 16
    cv: str = "none"
    baseline: bool = True
    seed: int | None = 0
    dtype: str = "float64"
    device: str = "cpu"
    option: str = "call"
    barrier: float | None = None
    barrier_kind: str = "up-and-out"
    lookback_kind: str = "floating"
    cash: float = 1.0
    bridge: bool | None = None
    heston: dict = field(default_factory=dict)
    merton: dict = field(default_factory=dict)


def parse_floats(text, what: str) -> torch.Tensor:
    """A number or a comma-separated list of numbers as a float64 tensor."""
    try:
        vals = [float(v) for v in str(text).split(",") if v.strip()]
    except ValueError as e:
        raise ParameterError(f"{what} must be a number or a comma-separated list: {text!r}") from e
    if not vals:
        raise ParameterError(f"{what} is empty; give a number or a comma-separated list")
    return torch.tensor(vals[0] if len(vals) == 1 else vals, dtype=torch.float64)


def build_payoff(name, strike, option, barrier, barrier_kind, lookback_kind, cash):
    """The payoff called ``name`` (one of ``PAYOFF_NAMES``) at ``strike``."""
    if name == "call":
        return Call(strike)
    if name == "put":
        return Put(strike)
    if name == "cash-digital":
        return CashDigital(strike, option, cash=cash)
    if name == "asset-digital":
        return AssetDigital(strike, option)
    if name == "barrier":
        if barrier is None:
            raise ParameterError("--payoff barrier needs --barrier LEVEL (e.g. --barrier 120)")
        return Barrier(strike, barrier, barrier_kind, option)
    if name == "asian":
        return ArithmeticAsian(strike, option)
    if name == "geometric-asian":
        return GeometricAsian(strike, option)
    if name == "lookback":
        return Lookback(strike if lookback_kind == "fixed" else None, option, lookback_kind)
    raise ParameterError(f"unknown payoff {name!r}; choose from {', '.join(PAYOFF_NAMES)}")


def _dtype(name: str) -> torch.dtype:
    dt = getattr(torch, str(name), None)
    if not isinstance(dt, torch.dtype) or not dt.is_floating_point:
        raise ParameterError(f"--dtype must be float64 or float32, got {name!r}.")
    return dt  # estimate_greeks refuses half precision, saying why


def run_greeks(config: GreeksConfig):
    """Run the estimators and return (rows, results, skipped): one row per option and quantity;
    ``skipped`` says, per method, which Greeks it cannot give and why."""
    cfg = config
    spots, strikes = parse_floats(cfg.spot, "--spot"), parse_floats(cfg.strike, "--strike")
    if spots.dim() and strikes.dim():  # a grid: spots down, strikes across
        spots = spots.unsqueeze(-1)
    names = [g.strip() for g in cfg.greeks.split(",") if g.strip()]
    bad = [g for g in names if g not in GREEK_NAMES]
    if bad:
        raise ParameterError(f"unknown Greek(s) {bad}; choose from {', '.join(GREEK_NAMES)}")
    if cfg.model not in MODELS:
        raise ParameterError(f"unknown model {cfg.model!r}; choose from {', '.join(MODELS)}")
    methods = list(METHODS) if cfg.method == "all" else [cfg.method]
    if any(m not in METHODS for m in methods):
        raise ParameterError(f"--method must be one of {', '.join(METHODS)} or all")
    dt = _dtype(cfg.dtype)
    bridge = (cfg.sampler == "qmc" and cfg.dates > 1) if cfg.bridge is None else cfg.bridge
    kw = dict(
        spot=spots,
        vol=cfg.vol,
        rate=cfg.rate,
        div=cfg.div,
        maturity=cfg.maturity,
        dates=cfg.dates,
        bridge=bridge,
    )
    if cfg.model == "heston":
        kw.update(cfg.heston or {})
    if cfg.model == "merton":
        kw.update(cfg.merton or {})
    model = MODELS[cfg.model](**kw)
    payoff = build_payoff(
        cfg.payoff,
        strikes,
        cfg.option,
        cfg.barrier,
        cfg.barrier_kind,
        cfg.lookback_kind,
        cfg.cash,
    )
    exact = exact_greeks(model, payoff, names)
    results, skipped = {}, {}
    for m in methods:
        ok = [g for g in names if m != "pathwise" or _pw_problem(model, payoff, g) is None]
        skipped[m] = {g: _pw_problem(model, payoff, g) for g in names if g not in ok}
        use_cv = cfg.cv if m == "lr" else "none"
        results[m] = estimate_greeks(
            model,
            payoff,
            cfg.n,
            method=m,
            greeks=ok,
            sampler=cfg.sampler,
            replicates=cfg.replicates,
            control_variate=None if use_cv == "none" else use_cv,
            baseline=cfg.baseline,
            seed=cfg.seed,
            dtype=dt,
            device=cfg.device,
        )
    return _rows(spots, strikes, names, exact, results), results, skipped


def _rows(spots, strikes, names, exact, results) -> list[dict]:
    first = next(iter(results.values()))
    shape = first.price.shape
    sp = spots.expand(shape) if shape else spots
    kk = strikes.expand(shape) if shape else strikes
    rows = []
    index = (
        [()]
        if not shape
        else [
            tuple(i)
            for i in torch.cartesian_prod(*[torch.arange(s) for s in shape])
            .reshape(-1, len(shape))
            .tolist()
        ]
    )
    for idx in index:
        for g in ["price", *names]:
            row = {
                "spot": float(sp[idx]) if sp.dim() else float(sp),
                "strike": float(kk[idx]) if kk.dim() else float(kk),
                "quantity": g,
            }
            ex = None
            if exact is not None and g in exact:
                ex = float(exact[g].expand(shape)[idx]) if shape else float(exact[g])
            row["exact"] = ex
            for m, r in results.items():
                est = r.price if g == "price" else r.greeks.get(g)
                se = r.price_se if g == "price" else r.stderr.get(g)
                if est is None:
                    row[m] = row[f"{m}_se"] = row[f"{m}_z"] = None
                    continue
                e = float(est[idx]) if shape else float(est)
                s = float(se[idx]) if shape else float(se)
                row[m], row[f"{m}_se"] = e, s
                row[f"{m}_z"] = (e - ex) / s if (ex is not None and s > 0) else None
            rows.append(row)
    return rows
