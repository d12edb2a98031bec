"""ARSM: Augment-REINFORCE-Swap-Merge, the categorical counterpart of ARM.

Yin, Yue & Zhou 2019, "ARSM: Augment-REINFORCE-Swap-Merge Estimator for Gradient Backpropagation
Through Categorical Variables". A Categorical(softmax φ) draw is z = argmin_i π_i e^{-φ_i} with
π ~ Dirichlet(1_K). Swapping entries m and j of π gives another valid draw, the pseudo action
z^{m⇌j} = argmin_i (π^{m⇌j})_i e^{-φ_i}; with f^{m⇌j} = f(z^{m⇌j}) (f^{j⇌j} = f(z)),

    ∇_{φ_c} E[f(z)] = E_π[ Σ_j (f^{c⇌j} - (1/K) Σ_m f^{m⇌j}) (1/K - π_j) ]     (eq. 11 there).

No gradient of f; one unit costs K(K-1)/2 + 1 evaluations (every pair, without removing the pseudo
actions that coincide with z). For several independent variables with a joint f the same swap
(m, j) is applied to every variable at once (their §2.3), so the cost does not grow with the number
of variables. The value reported is the mean of f over all pseudo actions (each is a draw from p).

>>> import torch, scoregrad as sg
>>> p = sg.problems.get("categorical_table")
>>> est = sg.estimate_grad(p.f, p.dist_fn, p.params(), n=20_000, estimator=ARSM(), seed=0)
>>> _, exact = p.exact()
>>> bool(((est.grad["logits"] - exact["logits"]).abs() < 4.42 * est.stderr["logits"]).all())
True
>>> est.n_evals                                     # K(K-1)/2 + 1 = 7 per unit, K = 4
140000
"""

from __future__ import annotations

import math

import torch
import torch.distributions as D

from ._categorical import LogitEstimator, n_categories, split_items
from .registry import register_estimator

__all__ = ["ARSM", "pseudo_actions"]


def _pairs(K: int, device):
    m, j = torch.triu_indices(K, K, offset=1, device=device)
    return m, j


def pseudo_actions(log_pi: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """z^{m⇌j} for every pair m < j (in ``torch.triu_indices`` order): (..., K(K-1)/2).

    Only three numbers can be the new minimum after a swap: the swapped entries and the smallest
    entry outside the pair (one of the three smallest), so this costs O(K²), not O(K³).
    """
    K = logits.shape[-1]
    mi, ji = _pairs(K, logits.device)
    la = log_pi - logits  # log(π_i e^{-φ_i})
    r = min(3, K)
    vals, idx = la.topk(r, -1, largest=False)
    if r < 3:  # pad: K = 2 has no entry outside the pair
        pad = 3 - r
        vals = torch.cat([vals, vals.new_full((*vals.shape[:-1], pad), math.inf)], -1)
        idx = torch.cat([idx, idx.new_full((*idx.shape[:-1], pad), -1)], -1)
    inside = (idx[..., None, :] == mi[:, None]) | (idx[..., None, :] == ji[:, None])
    rest = torch.where(inside, math.inf, vals[..., None, :])  # (..., P, 3)
    rest_val, pos = rest.min(-1)
    rest_idx = idx[..., None, :].expand_as(rest).gather(-1, pos.unsqueeze(-1)).squeeze(-1)
    at_m = log_pi[..., ji] - logits[..., mi]  # π_j moved to position m
    at_j = log_pi[..., mi] - logits[..., ji]
    cand = torch.stack([rest_val, at_m, at_j], -1)
    who = torch.stack([rest_idx, mi.expand_as(rest_idx), ji.expand_as(rest_idx)], -1)
    return who.gather(-1, cand.argmin(-1, keepdim=True)).squeeze(-1)


@register_estimator
class ARSM(LogitEstimator):
    """ARSM (Yin, Yue & Zhou 2019) for Categorical variables; unbiased, no gradient of f,
    K(K-1)/2 + 1 evaluations per unit."""

    name = "arsm"
    unit = "Dirichlet draw with its K(K-1)/2 swapped pseudo actions"

    def evals_per_unit(self, dist: D.Distribution) -> int:
        if self.supports(dist) is not None:  # no categories to count
            return self.samples_per_unit
        K = n_categories(dist)
        return K * (K - 1) // 2 + 1

    def _logit_grads(self, evaluator, logits, f_input, item_dims, keep_graph):
        n, K = logits.shape[0], logits.shape[-1]
        with torch.no_grad():
            E = torch.empty_like(logits).exponential_()
            log_pi = torch.log(E) - torch.log(E.sum(-1, keepdim=True))
            z = (log_pi - logits).argmin(-1)
            swaps = pseudo_actions(log_pi, logits)
            actions = torch.cat([z.unsqueeze(-1), swaps], -1)  # (n, *batch, P + 1)
            P1 = actions.shape[-1]
            points = actions.movedim(-1, 1).reshape(n * P1, *logits.shape[1:-1])
        fx = evaluator(f_input(points), keep_graph=keep_graph)  # (n (P+1), *items)
        items, V = split_items(logits, item_dims)
        fx = fx.reshape(n, P1, items)
        # table[m, j] -> which pseudo action: the diagonal is z itself, pair (m, j) is 1 + its index
        mi, ji = _pairs(K, logits.device)
        table = torch.zeros(K, K, dtype=torch.long, device=logits.device)
        table[mi, ji] = table[ji, mi] = torch.arange(1, P1, device=logits.device)
        Ft = fx.detach()[:, table]  # (n, K_m, K_j, I): f^{m⇌j}
        A = Ft - Ft.mean(1, keepdim=True)
        pi = log_pi.exp().reshape(n, items, V, K)
        g = torch.einsum("ncji,nivj->nivc", A.to(pi), 1.0 / K - pi)
        values = fx.mean(1)
        return values.reshape(n, *evaluator.item_shape), g.reshape(logits.shape)

    def __repr__(self):
        return "ARSM()"
