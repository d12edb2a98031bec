"""Kool, van Hoof & Welling 2020, figure 1 (the Bernoulli toy of Liu et al. 2019), reproduced.

Three Bernoulli(σ(η)) bits with one shared logit η, seen as one Categorical over the 8 bit
patterns; f(b) = Σ_i (b_i - t_i)², t = (0.6, 0.51, 0.48); the gradient with respect to η, at
η = 0 (high entropy) and η = -4 (low entropy). For k = 1..8 evaluations of f, the single-unit
gradient variance of:

* ``reinforce_k``: k samples with replacement, no baseline (the paper's "VIMCO (no bl)");
* ``rloo_k``: k samples with replacement, leave-one-out baseline ("VIMCO (built-in bl)");
* ``sum_and_sample``: k-1 most probable summed, one sampled ("Det. sum & sample (no bl)"),
  ``RaoBlackwellReinforce(k - 1, baseline=False)``;
* ``unordered``: the unordered set estimator without baseline ("Unordered (no bl)"),
  ``UnorderedSet(k, baseline=False)``;
* ``unordered_bl``: with the built-in baseline ("Unordered (built-in bl)"), ``UnorderedSet(k)``.

Each is computed **exactly** (``scoregrad.diagnostics.enumeration``: every outcome enumerated) and
**measured** with the library's estimators (n units; z = (measured - exact)/se, se from the
per-unit fourth moment). The paper's values are read by eye off its figure (log scale, Monte Carlo
with 1000 draws each; about ±15%): ``published``.

    PYTHONPATH=src python benchmarks/categorical_toy.py            # n = 20000 units per point
    PYTHONPATH=src python benchmarks/categorical_toy.py --n 4000

Writes benchmarks/results/categorical_toy.{json,md}.
"""

from __future__ import annotations

import argparse
import itertools
import math

import torch
from _common import write_results

import scoregrad as sg
from scoregrad.diagnostics import enumeration as ex
from scoregrad.problems import categorical_bernoulli_toy

#: (eta, estimator, k) -> variance read off Kool et al. 2020, figure 1 (bernoulli toy, η = 0 / -4)
PUBLISHED = {
    (0.0, "reinforce_k", 1): 0.45,
    (0.0, "reinforce_k", 8): 0.058,
    (0.0, "rloo_k", 2): 8e-3,
    (0.0, "rloo_k", 4): 1.9e-3,
    (0.0, "rloo_k", 8): 7e-4,
    (0.0, "sum_and_sample", 5): 0.12,
    (0.0, "sum_and_sample", 6): 3.5e-4,
    (0.0, "unordered_bl", 2): 6e-3,
    (0.0, "unordered_bl", 3): 2.2e-3,
    (0.0, "unordered_bl", 4): 1.1e-3,
    (0.0, "unordered_bl", 5): 6.5e-4,
    (0.0, "unordered_bl", 6): 3.2e-4,
    (0.0, "unordered_bl", 7): 1.3e-4,
    (-4.0, "reinforce_k", 1): 3.5e-2,
    (-4.0, "rloo_k", 2): 3e-4,
    (-4.0, "rloo_k", 8): 1e-4,
    (-4.0, "unordered_bl", 2): 3e-5,
    (-4.0, "unordered_bl", 3): 8e-6,
    (-4.0, "unordered_bl", 4): 1e-6,
}


def _setup(eta: float):
    prob = categorical_bernoulli_toy(eta=eta)
    e = torch.tensor(eta, dtype=torch.float64, requires_grad=True)
    theta = prob.dist_fn(e).logits
    J = torch.stack([torch.autograd.grad(theta[i], e, retain_graph=True)[0] for i in range(8)])
    f = prob.f(torch.arange(8))
    return prob, theta.detach(), J.reshape(8, 1), f.to(torch.float64)


def exact_row(theta, J, f, name: str, k: int, n: int) -> tuple[float, float]:
    """(exact variance, share of it carried by outcomes rarer than 10/n: there a sample of n
    units rarely sees them and its variance, and the z-score, are not meaningful)."""
    if name == "reinforce_k":
        _, var, w, g = ex.reinforce(f, theta, J, outcomes=True)
        return float(var) / k, _tail(w, g, var, n * k) if k == 1 else math.nan
    if name == "rloo_k":
        return float(ex.reinforce_loo(f, theta, J, k)[1]), math.nan
    if name == "sum_and_sample":
        _, var, w, g = ex.sum_and_sample(f, theta, J, k - 1, outcomes=True)
    else:
        _, var, w, g = ex.unordered_set(
            f, theta, J, k, baseline=name == "unordered_bl", outcomes=True
        )
    return float(var), _tail(w, g, var, n)


def _tail(w, g, var, n) -> float:
    if float(var) < 1e-20:
        return 0.0
    mean = w @ g
    rare = w < 10.0 / n
    return float((w[rare] @ (g[rare] - mean) ** 2) / var)


def tie_range(theta, J, f, k: int) -> tuple[float, float] | None:
    """With tied probabilities "the k most probable" is not unique: the range of the exact
    sum-and-sample variance over every tie-break (None without ties at the boundary)."""
    if k == 0:
        return None
    order = theta.sort(descending=True).values
    if k >= theta.shape[0] or order[k - 1] != order[k]:
        return None
    tied = (theta == order[k - 1]).nonzero().flatten().tolist()
    sure = (theta > order[k - 1]).nonzero().flatten().tolist()
    vals = [
        float(ex.sum_and_sample(f, theta, J, k, summed=sure + list(c))[1])
        for c in itertools.combinations(tied, k - len(sure))
    ]
    return min(vals), max(vals)


def _measured_units(prob, name: str, k: int, n: int, seed: int) -> torch.Tensor:
    """Per-unit gradients (n,) from the library's estimators."""
    params = prob.params()
    if name == "rloo_k":  # k samples per unit through the expectation door, one call per unit
        out = []
        for r in range(n):
            eta = params["eta"].detach().clone().requires_grad_()
            loss = sg.expectation(prob.f, prob.dist_fn(eta), k, sg.RLOO(), seed=seed + r)
            out.append(torch.autograd.grad(loss, eta)[0])
        return torch.stack(out)
    estimator = {
        "reinforce_k": sg.ScoreFunction(),
        "sum_and_sample": sg.RaoBlackwellReinforce(k - 1, baseline=False),
        "unordered": sg.UnorderedSet(k, baseline=False),
        "unordered_bl": sg.UnorderedSet(k),
    }[name]
    m = n * k if name == "reinforce_k" else n
    est = sg.estimate_grad(
        prob.f, prob.dist_fn, params, m, estimator, seed=seed, return_per_sample=True
    )
    units = est.per_sample["eta"].reshape(-1)
    if name == "reinforce_k":
        units = units.reshape(n, k).mean(1)
    return units


def _variance_and_se(units: torch.Tensor) -> tuple[float, float]:
    c = units - units.mean()
    var = float((c**2).mean())
    m4 = float((c**4).mean())
    return var, math.sqrt(max(m4 - var**2, 0.0) / units.shape[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20_000, help="units per measured point")
    ap.add_argument("--rloo-n", type=int, default=2_000, help="units for the k-sample RLOO points")
    args = ap.parse_args()
    names = ["reinforce_k", "rloo_k", "sum_and_sample", "unordered", "unordered_bl"]
    rows = []
    for eta in (0.0, -4.0):
        prob, theta, J, f = _setup(eta)
        for k in range(1, 9):
            for j, name in enumerate(names):
                if name == "rloo_k" and k == 1:
                    continue
                n = args.rloo_n if name == "rloo_k" else args.n
                exact, tail = exact_row(theta, J, f, name, k, n)
                units = _measured_units(prob, name, k, n, seed=1000 * k + j)
                var, se = _variance_and_se(units)
                if max(exact, var) < 1e-20:  # exact estimator: zero up to rounding
                    z = 0.0
                else:
                    z = (var - exact) / se if se > 0 else math.inf
                ties = tie_range(theta, J, f, k - 1) if name == "sum_and_sample" else None
                rows.append({
                    "eta": eta, "estimator": name, "k": k, "evals": k, "exact": exact,
                    "measured": var, "measured_se": se, "z": z, "rare_share": tail,
                    "tie_range": ties, "published": PUBLISHED.get((eta, name, k)),
                })  # fmt: skip
    lines = [
        "| η | estimator | k | exact variance | measured ± se | z | published (read off) | "
        "exact / published | over tie-breaks |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        pub = r["published"]
        ratio = f"{r['exact'] / pub:.2f}" if pub else ""
        rare = r["rare_share"] > 0.05
        z = f"{r['z']:+.2f}" + (f" (rare: {r['rare_share']:.0%})" if rare else "")
        ties = f"{r['tie_range'][0]:.3g} .. {r['tie_range'][1]:.3g}" if r["tie_range"] else ""
        lines.append(
            f"| {r['eta']:g} | {r['estimator']} | {r['k']} | {r['exact']:.4g} | "
            f"{r['measured']:.4g} ± {r['measured_se']:.2g} | {z} | "
            f"{pub if pub is not None else ''} | {ratio} | {ties} |"
        )
    tested = [r for r in rows if not r["rare_share"] > 0.05]
    worst = max(abs(r["z"]) for r in tested)
    pubs = [r for r in rows if r["published"]]
    within = [
        r for r in pubs
        if 0.75 <= r["exact"] / r["published"] <= 1.33
        or (r["tie_range"] and 0.75 * r["tie_range"][0] <= r["published"] <= 1.33 * r["tie_range"][1])
    ]  # fmt: skip
    summary = (
        f"\nmax |z| measured vs exact: {worst:.2f} over the {len(tested)} points whose variance "
        f"is not carried by outcomes rarer than 10/n (4.42 = 1e-5 two-sided; 'rare: x%' marks the "
        f"others). Published points matched (exact within 0.75-1.33x of the value read off the "
        f"figure, or of the range over tie-breaks): {len(within)} of {len(pubs)}."
    )
    table = "\n".join(lines) + "\n" + summary
    print(table)
    write_results("categorical_toy", rows, table, extra={"n": args.n, "rloo_n": args.rloo_n})


if __name__ == "__main__":
    main()
