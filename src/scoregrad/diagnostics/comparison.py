"""Side-by-side comparison of gradient estimators: bias, variance, cost, and the literature's plots.

``compare(problem, estimators, n, repeats)`` runs every estimator ``repeats`` times on a problem
with an exact gradient and reports, per parameter component: the mean estimate, the exact
gradient, the bias and its z-score, the variance of a single-sample (single-unit) estimator, the
signal-to-noise ratio |E ĝ| / sd(ĝ), evaluations of f per gradient, wall time per gradient, and the
work-normalised variance Var(ĝ_n) × seconds (independent of n; lower is better). Biased estimators
(Gumbel-softmax, straight-through) get their bias measured, never hidden: a |z| above 4.42 is
flagged. The result prints as a rich table and saves as CSV, JSON and a PNG.

``variance_sweep`` and ``plot_variance_sweep`` draw variance against a problem parameter (Mohamed,
Rosca, Figurnov & Mnih 2020, "Monte Carlo Gradient Estimation in Machine Learning", figures 2-3);
``trajectory`` and ``plot_trajectory`` run Adam with each estimator and draw the loss and the
log-variance of the gradient along the way (Grathwohl et al. 2018, "Backpropagation through the
Void", figure 1). ``normal_estimator_variances`` computes exact single-sample variances of the
score-function (with and without the optimal baseline), pathwise and measure-valued estimators for
x ~ N(μ, σ²) by quadrature (scipy), to check measured variances against.

>>> import scoregrad as sg
>>> cmp = compare(sg.problems.get("normal_square", k=0.0), ["score_function", "pathwise"],
...               n=20_000, repeats=2, seed=0)
>>> [r["estimator"] for r in cmp.rows if r["param"] == "mu"]
['score_function', 'pathwise']
>>> v = normal_estimator_variances(lambda x: x**2, lambda x: 2 * x, mu=1.0, sigma=1.0)
>>> [round(v[k][0], 3) for k in ("score_function", "optimal_baseline", "pathwise", "mvd_coupled")]
[30.0, 14.0, 4.0, 1.093]
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import estimators as E
from ..control_variates import ScoreControlVariate
from ..core.result import TooFewUnitsWarning
from ..errors import ArgumentError, EstimatorNotApplicable, ScoregradError
from ..estimate import estimate_grad
from ..estimators.registry import registered
from .plots import plot_trajectory, plot_variance_sweep
from .problems import Problem

__all__ = [
    "ESTIMATORS",
    "CONFIGURED",
    "ALIASES",
    "make_estimator",
    "compare",
    "Comparison",
    "normal_estimator_variances",
    "variance_sweep",
    "check_sweep_shapes",
    "plot_variance_sweep",
    "trajectory",
    "plot_trajectory",
    "Z_FLAG",
]

#: |z| above which a bias is flagged (two-sided 1e-5 false-alarm rate per component)
Z_FLAG = 4.42

#: configurations compare offers beyond each registered estimator's defaults
CONFIGURED: dict[str, Callable[[], E.Estimator]] = {
    "optimal_baseline": lambda: E.ScoreFunction(control_variate=ScoreControlVariate()),
    "mvd": lambda: E.MeasureValued(coupling=False),
}
#: other spellings that keep working (the registry's name is the one shown)
ALIASES = {"mvd_coupled": "measure_valued"}


def _estimator_table() -> dict[str, Callable[[], E.Estimator]]:
    """Every registered estimator of ∇E[f] (VIMCO's log-mean-exp objective has another exact
    gradient) under its registry name, then the configured variants."""
    table: dict[str, Callable[[], E.Estimator]] = {
        name: cls for name, cls in registered().items() if cls.estimates == "E[f]"
    }
    table.update(CONFIGURED)
    return table


#: estimator names accepted by ``compare`` and ``scoregrad compare`` (built from the registry)
ESTIMATORS: dict[str, Callable[[], E.Estimator]] = _estimator_table()


def make_estimator(name: str) -> E.Estimator:
    """A fresh estimator by its ``ESTIMATORS`` name (or an alias such as ``mvd_coupled``)."""
    table = _estimator_table()  # estimators registered after import count too
    key = ALIASES.get(name, name)
    if key not in table:
        import difflib

        close = difflib.get_close_matches(name, [*table, *ALIASES], n=2)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise ScoregradError(f"unknown estimator {name!r}.{hint} Known: {', '.join(table)}.")
    return table[key]()


def _resolve(estimators) -> dict[str, E.Estimator]:
    if isinstance(estimators, Mapping):
        return {k: (make_estimator(v) if isinstance(v, str) else v) for k, v in estimators.items()}
    out = {}
    for e in estimators:
        if isinstance(e, str):
            out[e] = make_estimator(e)
        else:
            out[e.name] = e
    return out


# --- compare ----------------------------------------------------------------------------------


@dataclass
class Comparison:
    """Rows (one per estimator, parameter and component) and the estimators that did not apply."""

    problem: str
    n: int
    repeats: int
    rows: list[dict] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    #: {label: [AutoReport per repeat]} for estimators that report a choice (``Auto``)
    choices: dict[str, list] = field(default_factory=dict)

    COLUMNS = (
        "estimator", "param", "index", "mean", "exact", "bias", "bias_z", "variance", "snr",
        "evals", "seconds", "work_variance", "biased",
    )  # fmt: skip

    def to_csv(self, path) -> Path:
        path = Path(path)
        with path.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=self.COLUMNS)
            w.writeheader()
            for r in self.rows:
                w.writerow({k: r[k] for k in self.COLUMNS})
        return path

    def to_dict(self) -> dict:
        return {
            "problem": self.problem, "n": self.n, "repeats": self.repeats,
            "rows": self.rows, "not_applicable": self.skipped,
            "choices": {k: [r.as_dict() for r in v] for k, v in self.choices.items()},
        }  # fmt: skip

    def to_json(self, path) -> Path:
        """Strict JSON: non-finite numbers (an exact estimator's SNR) are written as strings."""
        path = Path(path)
        path.write_text(json.dumps(_finite(self.to_dict()), indent=2, allow_nan=False))
        return path

    def table(self):
        """A rich Table of the rows."""
        from rich.table import Table

        t = Table(title=f"{self.problem}: n={self.n}, {self.repeats} repeats", show_lines=False)
        for col, just in [
            ("estimator", "left"), ("param", "left"), ("mean", "right"), ("exact", "right"),
            ("bias (z)", "right"), ("var/sample", "right"), ("SNR", "right"),
            ("evals", "right"), ("ms/grad", "right"), ("var×time", "right"),
        ]:  # fmt: skip
            t.add_column(col, justify=just)
        for r in self.rows:
            z = r["bias_z"]
            flag = abs(z) > Z_FLAG if math.isfinite(z) else False
            bias = f"{r['bias']:+.3g} ({z:+.1f})"
            if flag:
                bias = f"[bold red]{bias} BIASED[/]"
            name = r["estimator"] + (" (biased)" if r["biased"] else "")
            param = r["param"] + (f"[{r['index']}]" if r["index"] != "" else "")
            t.add_row(
                name, param, f"{r['mean']:.5g}", f"{r['exact']:.5g}", bias,
                f"{r['variance']:.4g}", f"{r['snr']:.3g}", str(r["evals"]),
                f"{1e3 * r['seconds']:.3g}", f"{r['work_variance']:.3g}",
            )  # fmt: skip
        return t

    def print(self, console=None) -> None:
        """Print the table (and, dimmed, why each skipped estimator does not apply)."""
        from rich.console import Console

        console = console or Console(width=None if Console().is_terminal else 150)
        console.print(self.table())
        for name, why in self.skipped.items():
            console.print(f"[dim]{name}: not applicable: {why.split('. Estimators')[0]}[/]")
        for label, reports in self.choices.items():
            picks = ", ".join(f"{c} ×{k}" for c, k in _counts(r.choice for r in reports).items())
            share = max(r.pilot_share for r in reports)
            console.print(
                f"{label} chose: {picks}; pilot at most {100 * share:.1f}% of evaluations"
            )
            from rich.markup import escape

            console.print(escape(reports[0].table()), markup=True)

    def plot(self, path) -> Path:
        """Variance per sample and variance × time per estimator on log axes, sorted, zero and
        biased estimators marked (``scoregrad.diagnostics.plots.plot_comparison``)."""
        from .plots import plot_comparison

        return plot_comparison(self, path)


def _counts(items) -> dict:
    out: dict = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out


def _finite(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def compare(
    problem: Problem,
    estimators: Iterable | Mapping = tuple(ESTIMATORS),
    n: int = 10_000,
    repeats: int = 5,
    *,
    seed: int = 0,
    params: Mapping[str, torch.Tensor] | None = None,
    dtype: torch.dtype = torch.float64,
) -> Comparison:
    """Run each estimator ``repeats`` times (seeds seed, seed+1, ...) and tabulate the statistics.

    Estimators may be names from ``ESTIMATORS``, estimator objects, or a {label: estimator} dict.
    Estimators that do not apply to the problem are listed in ``skipped`` with the reason.
    """
    est = _resolve(estimators)
    params = params if params is not None else problem.params(dtype)
    _, exact = problem.exact(params)
    out = Comparison(problem.name, n, repeats)
    for label, estimator in est.items():
        runs = []
        try:
            for r in range(repeats):
                runs.append(
                    estimate_grad(problem.f, problem.dist_fn, params, n, estimator, seed=seed + r)
                )
        except EstimatorNotApplicable as e:
            out.skipped[label] = str(e)
            continue
        seconds = statistics.median(x.seconds for x in runs)
        biased = bool(estimator.biased)
        if any(x.auto is not None for x in runs):
            out.choices[label] = [x.auto for x in runs]
        for k in params:
            grads = torch.stack([x.grad[k].detach() for x in runs])
            ses = torch.stack([x.stderr[k].detach() for x in runs])
            mean = grads.mean(0)
            se = (ses**2).sum(0).sqrt() / repeats
            var = torch.stack([x.variance_per_sample[k] for x in runs]).mean(0)
            bias = mean - exact[k].to(mean)
            exact_up_to_rounding = bias.abs() <= 1e-12 * (1 + exact[k].to(mean).abs())
            z = torch.where(se > 0, bias / se, torch.where(exact_up_to_rounding, 0.0, math.inf))
            work = (ses**2).mean(0) * seconds
            flat = lambda t: t.reshape(-1).tolist()  # noqa: E731
            idx = [""] if mean.dim() == 0 else [str(i) for i in range(mean.numel())]
            for i, (m, ex, b, zz, v, w) in enumerate(
                zip(flat(mean), flat(exact[k]), flat(bias), flat(z), flat(var), flat(work),
                    strict=True)
            ):  # fmt: skip
                out.rows.append({
                    "estimator": label, "param": k, "index": idx[i], "mean": m, "exact": ex,
                    "bias": b, "bias_z": zz, "variance": v,
                    "snr": abs(m) / math.sqrt(v) if v > 0 else math.inf,
                    "evals": runs[0].n_evals, "seconds": seconds, "work_variance": w,
                    "biased": biased,
                })  # fmt: skip
    return out


# --- exact variances for x ~ N(μ, σ²) by quadrature ---------------------------------------------


def normal_estimator_variances(
    f: Callable[[np.ndarray], np.ndarray],
    df: Callable[[np.ndarray], np.ndarray] | None,
    mu: float = 1.0,
    sigma: float = 1.0,
) -> dict[str, tuple[float, float]]:
    """Exact single-sample variances (μ, σ) of each estimator of ∇ E_{N(μ,σ²)}[f], by quadrature.

    Parameters are (μ, σ) themselves. Estimators: ``score_function``; ``optimal_baseline`` (the
    per-parameter constant b* = E[f s²]/E[s²]); ``pathwise`` (needs f' = df); ``mvd_coupled`` and
    ``mvd`` (independent sides, the negative σ side being the original sample), as implemented by
    ``MeasureValued``. f and df take and return NumPy arrays (they are called on scalars).
    """
    import warnings

    from scipy import integrate
    from scipy.stats import norm

    with warnings.catch_warnings():
        # far tails of the Maxwell weight (m ≫ 10) make the inner integrand oscillate; their weight
        # is below 1e-20, so quad's subdivision warnings there do not affect the result
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        return _normal_variances(integrate, norm, f, df, mu, sigma)


def _normal_variances(integrate, norm, f, df, mu, sigma):

    inf = np.inf
    phi = norm.pdf

    def E(h):  # E over ε ~ N(0, 1)
        return integrate.quad(lambda e: phi(e) * h(e), -inf, inf, limit=400)[0]

    def x(e):
        return mu + sigma * e

    g_mu = E(lambda e: f(x(e)) * e / sigma)
    g_sigma = E(lambda e: f(x(e)) * (e * e - 1) / sigma)
    out = {}
    s_mu = lambda e: e / sigma  # noqa: E731
    s_sigma = lambda e: (e * e - 1) / sigma  # noqa: E731
    out["score_function"] = (
        E(lambda e: (f(x(e)) * s_mu(e)) ** 2) - g_mu**2,
        E(lambda e: (f(x(e)) * s_sigma(e)) ** 2) - g_sigma**2,
    )
    opt = []
    for s, g in ((s_mu, g_mu), (s_sigma, g_sigma)):
        b = E(lambda e, s=s: f(x(e)) * s(e) ** 2) / E(lambda e, s=s: s(e) ** 2)
        opt.append(E(lambda e, s=s, b=b: ((f(x(e)) - b) * s(e)) ** 2) - g**2)
    out["optimal_baseline"] = tuple(opt)
    if df is not None:
        out["pathwise"] = (
            E(lambda e: df(x(e)) ** 2) - g_mu**2,
            E(lambda e: (df(x(e)) * e) ** 2) - g_sigma**2,
        )
    # measure-valued: W ~ Weibull(√2, 2) (Rayleigh), M ~ double-sided Maxwell, U ~ U(0, 1)
    c_mu, c_sigma = 1.0 / (sigma * math.sqrt(2 * math.pi)), 1.0 / sigma
    ray = lambda w: w * math.exp(-w * w / 2)  # noqa: E731
    maxw = lambda m: m * m * phi(m)  # noqa: E731

    def EW(h):
        return integrate.quad(lambda w: ray(w) * h(w), 0, inf, limit=400)[0]

    def EM(h):
        return integrate.quad(lambda m: maxw(m) * h(m), -inf, inf, limit=400)[0]

    fp = lambda w: f(mu + sigma * w)  # noqa: E731
    fn = lambda w: f(mu - sigma * w)  # noqa: E731
    coupled_mu = c_mu**2 * EW(lambda w: (fp(w) - fn(w)) ** 2) - g_mu**2
    # coupled σ: E_M E_U (f(μ+σM) - f(μ+σMU))²
    inner = lambda m: integrate.quad(  # noqa: E731
        lambda u: (f(mu + sigma * m) - f(mu + sigma * m * u)) ** 2, 0, 1, limit=500
    )[0]
    coupled_sigma = c_sigma**2 * EM(inner) - g_sigma**2
    out["mvd_coupled"] = (coupled_mu, coupled_sigma)
    e_fp, e_fn = EW(fp), EW(fn)
    indep_mu = c_mu**2 * (EW(lambda w: fp(w) ** 2) + EW(lambda w: fn(w) ** 2) - 2 * e_fp * e_fn)
    e_fm = EM(lambda m: f(mu + sigma * m))
    e_f = E(lambda e: f(x(e)))
    indep_sigma = c_sigma**2 * (
        EM(lambda m: f(mu + sigma * m) ** 2) + E(lambda e: f(x(e)) ** 2) - 2 * e_fm * e_f
    )
    out["mvd"] = (indep_mu - g_mu**2, indep_sigma - g_sigma**2)
    return out


# --- variance against a problem parameter -------------------------------------------------------


def check_sweep_shapes(
    swept: Sequence[Problem], values: Sequence[float], name: str = "the argument"
):
    """Refuse a sweep whose problems have parameters of different shapes (a swept dimension):
    a component's index then means another element at each value, so per-component variances
    cannot be lined up."""
    shapes = [{k: tuple(p.shape) for k, p in prob.params().items()} for prob in swept]
    for v, s in zip(values[1:], shapes[1:], strict=True):
        if s != shapes[0]:
            raise ArgumentError(
                f"sweeping {name} changes the parameters' shapes ({shapes[0]} at {values[0]}, "
                f"{s} at {v}), so per-component variances cannot be compared across values. Fix: "
                "sweep an argument that keeps the shapes (e.g. k), or compare each value on its "
                "own (--set)."
            )


def variance_sweep(
    make_problem: Callable[[float], Problem],
    values: Sequence[float],
    estimators: Iterable | Mapping,
    n: int = 10_000,
    *,
    seed: int = 0,
    params_fn: Callable[[Problem], Mapping[str, torch.Tensor]] | None = None,
) -> dict:
    """Single-sample variance of each estimator (per parameter component) at each value.

    Returns {"values": [...], "variance": {estimator: {param[index]: [v per value]}}}, every list
    one entry per value (NaN where the estimator does not apply at that value); estimators that
    never apply are left out. The parameters must keep their shapes across the values
    (``check_sweep_shapes``).
    """
    est = _resolve(estimators)
    res: dict = {"values": list(values), "variance": {}}
    swept = [make_problem(val) for val in values]
    if params_fn is None:
        check_sweep_shapes(swept, values)
    for j, prob in enumerate(swept):
        params = params_fn(prob) if params_fn is not None else prob.params()
        for label, estimator in est.items():
            try:
                e = estimate_grad(prob.f, prob.dist_fn, params, n, estimator, seed=seed + j)
            except EstimatorNotApplicable:
                continue
            for k, v in e.variance_per_sample.items():
                for i, vi in enumerate(v.reshape(-1).tolist()):
                    key = k if v.numel() == 1 else f"{k}[{i}]"
                    series = res["variance"].setdefault(label, {})
                    series.setdefault(key, [math.nan] * len(values))[j] = vi
    return res


# --- optimisation trajectories -----------------------------------------------------------------


def trajectory(
    problem: Problem,
    runs: Mapping[str, tuple[E.Estimator, int]],
    steps: int = 5000,
    lr: float = 0.01,
    *,
    seed: int = 0,
    record_every: int = 1,
    variance_n: int = 0,
    params: Mapping[str, torch.Tensor] | None = None,
) -> dict:
    """Minimise E[f] by Adam with each estimator; record the exact loss, the single-sample
    variance of the gradient (summed over components) and the cumulative evaluations of f.

    ``runs`` maps a label to (estimator, n per step); choose n so that evaluations per step match
    when comparing at equal cost. The variance comes from the step's own estimate, or, with
    ``variance_n`` > 0, from a separate estimate with that many samples at each recorded step
    (not counted in ``evals``; a learned control is frozen for it). Returns
    {label: {"step", "loss", "variance", "evals", "seconds", "params"}}.
    """
    out = {}
    for label, (estimator, n) in runs.items():
        p0 = params if params is not None else problem.params()
        ps = {k: v.detach().clone().requires_grad_() for k, v in p0.items()}
        opt = torch.optim.Adam(list(ps.values()), lr=lr)
        rec = {"step": [], "loss": [], "variance": [], "evals": [], "seconds": 0.0}
        evals = 0
        start = time.perf_counter()
        for step in range(steps):
            with warnings.catch_warnings():  # a step uses the gradient alone: one unit is enough
                warnings.simplefilter("ignore", TooFewUnitsWarning)
                e = estimate_grad(problem.f, problem.dist_fn, ps, n, estimator, seed=seed + step)
            evals += e.n_evals
            opt.zero_grad()
            for k, p in ps.items():
                p.grad = e.grad[k].detach().to(p)
            opt.step()
            if step % record_every == 0 or step == steps - 1:
                with torch.no_grad():
                    loss = float(problem.exact_value(**ps))
                if variance_n:
                    e = _frozen_estimate(problem, ps, variance_n, estimator, 10**9 + seed + step)
                var = sum(float(v.sum()) for v in e.variance_per_sample.values())
                rec["step"].append(step)
                rec["loss"].append(loss)
                rec["variance"].append(var if math.isfinite(var) else float("nan"))
                rec["evals"].append(evals)
        rec["seconds"] = time.perf_counter() - start
        rec["params"] = {k: v.detach().tolist() for k, v in ps.items()}
        out[label] = rec
    return out


def _frozen_estimate(problem, params, n, estimator, seed):
    training = getattr(estimator, "train", None)
    if isinstance(training, bool):
        estimator.train = False
    try:
        return estimate_grad(problem.f, problem.dist_fn, params, n, estimator, seed=seed)
    finally:
        if isinstance(training, bool):
            estimator.train = training
