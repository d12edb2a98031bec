"""Exact means and variances of categorical gradient estimators, by enumerating outcomes.

For one Categorical(softmax θ) over K categories with values f (K,) and the Jacobian J = ∂θ/∂φ
(K, P) of the logits with respect to the user's parameters φ, every estimator below is a function
of a finite random object (a category, a set, a pair), so its mean and covariance follow from
enumeration, in float64, without Monte Carlo error:

* ``reinforce``: f(x) ∇log p(x), x ~ p;
* ``reinforce_loo(k)``: k draws with replacement and the leave-one-out baseline,
  1/(k-1) Σ_i (f_i - f̄) ∇log p(x_i) (RLOO; "VIMCO, built-in baseline" in Kool et al. 2020), a
  U-statistic of the pairs: Var = 2/(k(k-1)) (2(k-2) ζ₁ + ζ₂);
* ``sum_and_sample(k)``: the k most probable categories summed, one draw from the rest
  (Liu et al. 2019);
* ``unordered_set(k, baseline)``: every set of k categories, with its probability computed from
  all k! orderings (independently of the subset recursion the estimator uses).

Each returns (mean (P,), variance (P,)) of one unit. ``scoregrad.estimators`` implements the
estimators; the tests and ``benchmarks/categorical_toy.py`` compare them with these numbers.

>>> import torch
>>> f = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
>>> theta = torch.zeros(3, dtype=torch.float64)
>>> J = torch.eye(3, dtype=torch.float64)
>>> m1, _ = reinforce(f, theta, J); m2, v2 = unordered_set(f, theta, J, k=3)
>>> bool(torch.allclose(m1, m2)), float(v2.abs().max()) < 1e-24     # k = K is exact
(True, True)
"""

from __future__ import annotations

import itertools

import torch

__all__ = ["reinforce", "reinforce_loo", "sum_and_sample", "unordered_set", "set_probability"]


def _score(theta: torch.Tensor, J: torch.Tensor) -> torch.Tensor:
    """∇φ log p(x) for every x: (K, P)."""
    p = torch.softmax(theta, -1)
    return (torch.eye(theta.shape[0], dtype=theta.dtype) - p) @ J


def _moments(weights: torch.Tensor, g: torch.Tensor, outcomes: bool = False):
    mean = weights @ g
    var = weights @ (g - mean) ** 2
    return (mean, var, weights, g) if outcomes else (mean, var)


def reinforce(f, theta, J, outcomes: bool = False):
    """Single-sample REINFORCE: (mean, variance) per parameter (and, with ``outcomes``, the
    probability and estimate of every outcome)."""
    p = torch.softmax(theta, -1)
    return _moments(p, f[:, None] * _score(theta, J), outcomes)


def reinforce_loo(f, theta, J, k: int):
    """k samples with replacement, leave-one-out baseline (k ≥ 2)."""
    p = torch.softmax(theta, -1)
    s = _score(theta, J)
    h = 0.5 * (f[:, None, None] - f[None, :, None]) * (s[:, None, :] - s[None, :, :])  # (K, K, P)
    pp = p[:, None] * p[None, :]
    mean = torch.einsum("ab,abp->p", pp, h)
    zeta2 = torch.einsum("ab,abp->p", pp, (h - mean) ** 2)
    h1 = torch.einsum("b,abp->ap", p, h)
    zeta1 = p @ (h1 - mean) ** 2
    return mean, 2.0 / (k * (k - 1)) * (2 * (k - 2) * zeta1 + zeta2)


def sum_and_sample(f, theta, J, k: int, summed=None, outcomes: bool = False):
    """The k most probable categories summed (or the categories ``summed``), one draw from the
    renormalised rest (k < K)."""
    p = torch.softmax(theta, -1)
    s = _score(theta, J)
    top = torch.as_tensor(summed) if summed is not None else theta.topk(k).indices
    rest = torch.ones_like(p, dtype=torch.bool)
    rest[top] = False
    summed = (p[top, None] * f[top, None] * s[top]).sum(0)
    q = torch.where(rest, p, torch.zeros_like(p))
    mass = q.sum()
    g = summed + mass * f[:, None] * s  # one row per sampled x' (rows in C have weight 0)
    return _moments(q / mass, g, outcomes)


def set_probability(p, subset: tuple[int, ...]) -> float:
    """P(the first |subset| draws without replacement are ``subset``, in any order): k! terms
    (``p`` a sequence of probabilities; float64 arithmetic)."""
    p = [float(v) for v in p]
    total = 0.0
    for order in itertools.permutations(subset):
        prob, left = 1.0, 1.0
        for i in order:
            prob *= p[i] / left
            left -= p[i]
        total += prob
    return total


def unordered_set(f, theta, J, k: int, baseline: bool = True, outcomes: bool = False):
    """The unordered set estimator over every set of k categories (Kool et al. 2020)."""
    p = torch.softmax(theta, -1).tolist()
    fl = [float(v) for v in f]
    s = _score(theta, J)
    K = len(p)
    probs, coefs = [], []
    for S in itertools.combinations(range(K), k):
        pS = set_probability(p, S)
        rest = {i: set_probability([v / (1 - p[i]) for v in p], tuple(j for j in S if j != i))
                for i in S}  # fmt: skip
        coef = [0.0] * K  # ĝ = Σ_i coef_i ∇log p(i)
        for i in S:
            b = 0.0
            if baseline and k > 1:
                for j in S:
                    if j == i:
                        b += p[i] * fl[i]
                        continue
                    q = [v / (1 - p[i] - p[j]) for v in p]
                    pair = set_probability(q, tuple(x for x in S if x not in (i, j)))
                    b += p[j] * pair / rest[i] * fl[j]
            coef[i] = p[i] * rest[i] / pS * (fl[i] - b)  # p(s) R(S, s) (f(s) - B_s)
        probs.append(pS)
        coefs.append(coef)
    weights = torch.tensor(probs, dtype=s.dtype)
    return _moments(weights, torch.tensor(coefs, dtype=s.dtype) @ s, outcomes)
