"""The unordered set estimator: k samples without replacement, with its built-in baseline.

Kool, van Hoof & Welling 2020, "Estimating Gradients for Discrete Random Variables by Sampling
without Replacement". Draw S, k distinct categories, by Gumbel-top-k (the k largest θ_i + G_i,
Kool et al. 2019). With p(S) the probability of drawing the *set* S (in any order) and
p^{D∖s}(S∖s) that of drawing the rest of it from the categories other than s,

    ĝ = Σ_{s∈S} p(s) R(S, s) ∇log p(s) [f(s) - B_s],      R(S, s) = p^{D∖s}(S∖s) / p(S),
    B_s = Σ_{s'∈S} p(s') R^{D∖s}(S, s') f(s'),   R^{D∖s}(S, s') = p^{D∖{s,s'}}(S∖{s,s'}) / p^{D∖s}(S∖s)

(eqs. 7 and 13 there; the s' = s term is p(s) f(s)). B_s, the unordered-set estimate of E[f] once
s is known to be in S, has expectation E[f] whatever s is, so it costs no bias; with k = 1 there is
no other sample and the baseline is 0 (plain REINFORCE). The value Σ_s p(s) R(S, s) f(s) is
unbiased for E[f]. With k = K it is exact.

The set probabilities come from a recursion over the 2^k subsets T of S (no k! orderings):
G(T) = P(the next |S∖T| draws are S∖T | T drawn first) = Σ_{i∈S∖T} p_i / (1 - p(T)) G(T ∪ {i}),
G(S) = 1; then p(S) = G(∅), p^{D∖s}(S∖s) = G({s}), p^{D∖{s,s'}}(S∖{s,s'}) = G({s,s'}).

Several independent variables with a joint f are handled coordinate-wise (one shared draw of the
others, one set per variable), V·k evaluations of f per unit; a single variable costs k.

>>> import torch, scoregrad as sg
>>> p = sg.problems.get("categorical_table")
>>> est = sg.estimate_grad(p.f, p.dist_fn, p.params(), n=10_000, estimator=UnorderedSet(3), seed=0)
>>> _, exact = p.exact()
>>> bool(((est.grad["logits"] - exact["logits"]).abs() < 4.42 * est.stderr["logits"]).all())
True
"""

from __future__ import annotations

import functools
import math

import torch
import torch.distributions as D

from ._categorical import (
    LogitEstimator,
    coordinatewise,
    gumbel_top_k,
    logit_gradient,
    n_categories,
    n_variables,
)
from .registry import register_estimator

__all__ = ["UnorderedSet", "log_set_recursion"]

#: largest set size: the recursion holds 2^k numbers per variable
MAX_K = 16


@functools.lru_cache(maxsize=64)
def _subset_plan(k: int, device: torch.device):
    """The subsets of a k-set, built once per (k, device): the (2^k, k) membership table (row T,
    column i True when i ∈ T) and, for each size from k - 1 down to 0, the subsets T of that
    size, T ∪ {i} for each i, and which i are already in T."""
    masks = torch.arange(1 << k, device=device)
    bits = ((masks[:, None] >> torch.arange(k, device=device)) & 1).bool()
    sizes = bits.sum(-1)
    single = 1 << torch.arange(k, device=device)
    levels = []
    for size in range(k - 1, -1, -1):
        at = (sizes == size).nonzero().flatten()
        levels.append((at, at[:, None] | single, bits[at]))
    return bits, tuple(levels)


@torch.no_grad()
def log_set_recursion(log_p: torch.Tensor) -> torch.Tensor:
    """log G(T) for every subset T of a set S with log-probabilities ``log_p`` (..., k): (..., 2^k).

    G(T) is the probability that, T having been drawn first (in any order), the next |S∖T| draws
    without replacement are exactly S∖T; so G(∅) = p(S).
    """
    k = log_p.shape[-1]
    bits, levels = _subset_plan(k, log_p.device)
    # log(1 - p(T)): p(T) a sum of probabilities (one matrix product), as accurate as their
    # log-sum-exp; log1p keeps small p(T) exact
    p_T = log_p.exp() @ bits.to(log_p.dtype).T
    log_rest = torch.log1p(-p_T.clamp_max(1.0))
    log_G = torch.zeros(*log_p.shape[:-1], 1 << k, dtype=log_p.dtype, device=log_p.device)
    for at, nxt, inside in levels:
        cand = log_p[..., None, :] - log_rest[..., at, None] + log_G[..., nxt]
        log_G[..., at] = torch.logsumexp(cand.masked_fill(inside, -math.inf), -1)  # only i ∉ T
    return log_G


@register_estimator
class UnorderedSet(LogitEstimator):
    """Unordered set estimator (Kool et al. 2020): k draws without replacement per unit, with
    the built-in baseline; unbiased.

    Args:
        k: samples without replacement per variable (1 ≤ k ≤ K, at most ``MAX_K``).
        baseline: use the built-in baseline (needs k ≥ 2 to have an effect).
    """

    name = "unordered_set"
    unit = "set of k samples without replacement"

    def __init__(self, k: int = 4, baseline: bool = True):
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
            raise ValueError(f"k must be an integer in [1, {MAX_K}], got {k!r}.")
        self.k = k
        self.baseline = bool(baseline)

    @property
    def samples_per_unit(self) -> int:
        return self.k

    def supports(self, dist: D.Distribution) -> str | None:
        why = super().supports(dist)
        if why is None and self.k > n_categories(dist):
            K = n_categories(dist)
            why = f"k={self.k} samples without replacement need k ≤ K={K} categories; use k ≤ {K}"
        return why

    def evals_per_unit(self, dist: D.Distribution) -> int:
        if self.supports(dist) is not None:  # no categories to count
            return self.samples_per_unit
        return n_variables(dist) * self.k

    def _logit_grads(self, evaluator, logits, f_input, item_dims, keep_graph):
        k = self.k
        L, S, fx = coordinatewise(
            evaluator, logits, f_input, item_dims, keep_graph, lambda L: gumbel_top_k(L, k)
        )
        logp = torch.log_softmax(L, -1)
        lp = logp.gather(-1, S)  # (n, I, V, k)
        log_G = log_set_recursion(lp)
        single = 1 << torch.arange(k, device=L.device)
        log_G1 = log_G[..., single]  # G({s})
        w = (lp + log_G1 - log_G[..., :1]).exp()  # p(s) R(S, s)
        values = (w * fx).sum(-1).mean(-1)
        f0 = fx.detach()
        signal = w * f0
        if self.baseline and k > 1:
            pair = log_G[..., single[:, None] | single[None, :]]  # G({s, s'}); diagonal G({s})
            B = ((lp[..., None, :] + pair - log_G1[..., :, None]).exp() * f0[..., None, :]).sum(-1)
            signal = w * (f0 - B)
        g = logit_gradient(signal, S, logp.exp())
        return values.reshape(logits.shape[0], *evaluator.item_shape), g.reshape(logits.shape)

    def __repr__(self):
        bl = "" if self.baseline else ", baseline=False"
        return f"UnorderedSet(k={self.k}{bl})"
