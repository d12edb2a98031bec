"""A discrete VAE with a categorical latent layer on binarised images.

    z_j ~ Categorical(softmax(π)),  j = 1..L (L latents of K classes; default 20 × 10),
    x | z ~ Π_i Bernoulli(σ(dec(onehot(z))_i)),      q(z | x) = Π_j Categorical(softmax(enc(x)_j))

with linear or two-tanh-layer encoder and decoder (the categorical VAE of Jang et al. 2017, Liu et
al. 2019, Kool et al. 2020). The encoder gets the chosen estimator's gradient through
``scoregrad.vi.ScoreFunctionELBO`` (``scoregrad.expectation`` with ``item_shape`` = the images);
decoder and prior get the pathwise gradient of the same objective. The log joint takes category
indices (n, B, L) or one-hot / relaxed one-hot vectors (n, B, L, K), so the estimators that feed f
one-hot vectors (REBAR, RELAX with a relaxed f, Gumbel-softmax, Gumbel-Rao) work too.

``ESTIMATORS`` matches their budgets: every entry spends about ``budget`` evaluations of the
log joint per image and step (40 by default: RLOO, RELAX, Gumbel-Rao and Gumbel-softmax with 40
samples; sum-and-sample with k = 1, V (k + 1) = 40; the unordered set with k = 2, V k = 40; REBAR
13 samples × 3; DisARM 20 pairs; ARSM one Dirichlet draw, K(K-1)/2 + 1 = 46).

>>> m = CategoricalVAE(x_dim=64, latents=4, classes=3)
>>> x = torch.bernoulli(torch.full((5, 64), 0.3))
>>> z = m.q(x).sample((2,))                              # (samples, images, latents)
>>> m.log_joint(x)(z).shape, torch.allclose(m.log_joint(x)(z),
...     m.log_joint(x)(torch.nn.functional.one_hot(z, 3).float()))
(torch.Size([2, 5]), True)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.distributions as D
import torch.nn.functional as F
from torch import nn

from ... import estimators as E
from ...baselines import LeaveOneOut
from ...core import seeded
from ...errors import EstimatorNotApplicable
from ..elbo import ScoreFunctionELBO
from ..training import fit
from .sbn import batch_objective, evaluate

__all__ = ["CategoricalVAE", "RelaxableCategorical", "ESTIMATORS", "make_estimator", "train", "run"]


class RelaxableCategorical(D.Categorical):
    """A Categorical whose log-density also takes one-hot or relaxed one-hot vectors y (..., K):
    log q(y) = Σ_k y_k log softmax(θ)_k, smooth in y (REBAR's relaxed f, Gumbel-softmax and
    Gumbel-Rao differentiate through it). ``relaxed_log_prob(y, fixed)`` is the hook
    ``scoregrad.vi.ScoreFunctionELBO`` looks for; ``fixed`` holds θ fixed (no graph to it)."""

    def relaxed_log_prob(self, y: torch.Tensor, fixed: bool = False) -> torch.Tensor:
        logits = self.logits.detach() if fixed else self.logits
        return (y * logits).sum(-1)


def _mlp(sizes: list[int]) -> nn.Module:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class CategoricalVAE(nn.Module):
    """Encoder q(z|x) over L categorical latents of K classes, learned prior, Bernoulli decoder."""

    def __init__(
        self,
        x_dim: int = 784,
        latents: int = 20,
        classes: int = 10,
        nonlinear: bool = False,
        hidden: int = 200,
        train_mean: torch.Tensor | None = None,
    ):
        super().__init__()
        self.x_dim, self.latents, self.classes = x_dim, latents, classes
        inner = [hidden, hidden] if nonlinear else []
        self.encoder = _mlp([x_dim, *inner, latents * classes])
        self.decoder = _mlp([latents * classes, *inner, x_dim])
        self.prior_logits = nn.Parameter(torch.zeros(latents, classes))
        mean = torch.full((x_dim,), 0.5) if train_mean is None else train_mean.float()
        self.register_buffer("x_mean", mean.clone())
        with torch.no_grad():  # start the decoder at the pixel marginals
            self.decoder[-1].bias.copy_(torch.logit(mean.clamp(1e-3, 1 - 1e-3)))

    def q(self, x: torch.Tensor) -> RelaxableCategorical:
        """q(z | x): Categorical with batch shape (B, latents), K classes."""
        logits = self.encoder(x - self.x_mean).reshape(x.shape[0], self.latents, self.classes)
        return RelaxableCategorical(logits=logits)

    def encoder_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())

    def log_joint(self, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """z (n, B, L) indices or (n, B, L, K) one-hot/relaxed -> log p(x_b, z_nb), (n, B)."""

        def fn(z):
            y = z if z.is_floating_point() else F.one_hot(z, self.classes)
            y = y.to(self.prior_logits.dtype)
            prior = (y * torch.log_softmax(self.prior_logits, -1)).sum((-1, -2))
            logits = self.decoder(y.flatten(-2))
            lik = -F.binary_cross_entropy_with_logits(
                logits, x.expand_as(logits), reduction="none"
            ).sum(-1)
            return prior + lik

        return fn


def _spec(build, n, evals):
    return {"build": build, "n": n, "evals": evals}


def estimators(budget: int = 40, latents: int = 20, classes: int = 10) -> dict[str, dict]:
    """name -> {build, n (units per image and step), evals (per image and step)} at ``budget``
    evaluations of the log joint per image and step (as close as each method allows)."""
    k_rb = max(0, budget // latents - 1)
    k_us = max(1, min(classes, budget // latents))
    n_rebar, n_pairs = max(1, budget // 3), max(1, budget // 2)
    return {
        "reinforce-loo": _spec(lambda: E.ScoreFunction(LeaveOneOut()), budget, budget),
        "relax": _spec(lambda: E.RELAX(), budget, budget),
        "rebar": _spec(lambda: E.REBAR(), n_rebar, 3 * n_rebar),
        "disarm": _spec(lambda: E.DisARM(), n_pairs, 2 * n_pairs),
        "arsm": _spec(lambda: E.ARSM(), 1, classes * (classes - 1) // 2 + 1),
        "rb-reinforce": _spec(lambda: E.RaoBlackwellReinforce(k_rb), 1, latents * (k_rb + 1)),
        "unordered-set": _spec(lambda: E.UnorderedSet(k_us), 1, latents * k_us),
        "gumbel-rao": _spec(lambda: E.GumbelRao(1.0), budget, budget),
        "gumbel-softmax": _spec(lambda: E.GumbelSoftmax(1.0), budget, budget),
    }


#: the default table (40 evaluations per image and step, 20 latents of 10 classes)
ESTIMATORS = estimators()


def make_estimator(name: str, table: dict | None = None) -> tuple[ScoreFunctionELBO, int, int]:
    """(ELBO estimator, units per image, evaluations per image) for an ``ESTIMATORS`` name."""
    table = ESTIMATORS if table is None else table
    if name not in table:
        raise EstimatorNotApplicable(
            f"unknown estimator {name!r} for the categorical VAE; use one of {sorted(table)}."
        )
    spec = table[name]
    return ScoreFunctionELBO(spec["build"]()), spec["n"], spec["evals"]


def train(
    data,
    estimator: str = "rb-reinforce",
    steps: int = 1000,
    batch_size: int = 50,
    lr: float = 1e-3,
    latents: int = 20,
    classes: int = 10,
    nonlinear: bool = False,
    budget: int = 40,
    seed: int = 0,
    grad_var_every: int = 0,
    grad_var_repeats: int = 10,
    checkpoint=None,
    progress: bool = True,
    time_budget: float | None = None,
    device: str | torch.device = "cpu",
    allow_changes: bool = False,
) -> dict:
    """Train a categorical VAE with one estimator (Adam) on ``data.train``; returns the model,
    history, steps/s, evaluations per image and step, and the training ELBO of the last 10%."""
    device = torch.device(device)
    xtr = data.train.to(device)
    with seeded(seed):  # initialisation on a forked RNG: the caller's is neither seeded nor used
        model = CategoricalVAE(data.dim, latents, classes, nonlinear, train_mean=xtr.mean(0))
    model = model.to(device)
    est, n, evals = make_estimator(estimator, estimators(budget, latents, classes))
    gen_seed = seed * 1_000_003

    def objective(step):
        g = torch.Generator().manual_seed(gen_seed + step)
        x = xtr[torch.randint(xtr.shape[0], (batch_size,), generator=g).to(device)]
        return batch_objective(model, est, n, x)

    res = fit(
        objective,
        model,
        steps,
        optimizer="adam",
        lr=lr,
        stateful=[est],
        seed=seed,
        checkpoint=checkpoint,
        grad_var_every=grad_var_every,
        grad_var_repeats=grad_var_repeats,
        grad_var_params=model.encoder_parameters(),
        time_budget=time_budget,
        progress=progress,
        config={
            "model": "categorical-vae", "data": getattr(data, "name", "data"),
            "estimator": estimator, "batch_size": batch_size, "latents": latents,
            "classes": classes, "budget": budget, "nonlinear": nonlinear, "device": str(device),
        },
        allow_changes=allow_changes,
    )  # fmt: skip
    e = res.history["elbo"]
    k = max(1, len(e) // 10)
    return {
        "model": model,
        "estimator": estimator,
        "evals_per_image": evals,
        "steps": res.steps,
        "seconds": res.seconds,
        "steps_per_second": (res.steps - (res.resumed_from or 0)) / max(res.seconds, 1e-9),
        "train_elbo_last10pct": sum(e[-k:]) / k,
        "history": res.history,
    }


def run(data, estimator: str, test_images=None, iw_samples: int = 0, **kw) -> dict:
    """Train, then evaluate on ``test_images`` (default: the test set): a flat dict of results."""
    r = train(data, estimator, **kw)
    xt = data.test if test_images is None else test_images
    device = next(r["model"].parameters()).device
    ev = evaluate(r["model"], xt.to(device), iw_samples=iw_samples)
    gv = r["history"].get("grad_var") or []
    out = {
        "data": data.name,
        "estimator": estimator,
        "biased": bool(getattr(make_estimator(estimator)[0].estimator, "biased", False)),
        "evals per image and step": r["evals_per_image"],
        "steps": r["steps"],
        "steps/s": r["steps_per_second"],
        "train ELBO (last 10% of steps)": r["train_elbo_last10pct"],
        f"test ELBO ({xt.shape[0]} images)": ev["elbo"],
    }
    if iw_samples:
        out[f"test IW bound, k={iw_samples}"] = ev["iw_bound"]
    if gv:
        out["encoder grad variance (median)"] = sorted(gv)[len(gv) // 2]
        out["log10 encoder grad variance"] = math.log10(max(sorted(gv)[len(gv) // 2], 1e-300))
    return out
