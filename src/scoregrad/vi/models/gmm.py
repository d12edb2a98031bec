"""A Gaussian mixture with discrete assignments: score-function VI against exact enumeration.

    c_i ~ Categorical(π),   x_i | c_i ~ N(μ_{c_i}, σ²),   i = 1..N,   π uniform, σ known,

with the means μ learned by maximising the ELBO (variational EM) and a mean-field guide
q(c) = Π_i Categorical(c_i; softmax(φ_i)). The assignments are discrete, so the guide's gradient
comes from the score function (BBVI: Rao-Blackwellised, each c_i's signal being its own term
log π_{c_i} + log N(x_i; μ_{c_i}, σ²) - log q(c_i), with a leave-one-out control variate); the
means get the pathwise gradient of the same Monte Carlo objective.

The reference replaces the Monte Carlo estimate by *exact enumeration*: because the model and
the guide factorise over data points, E_q[log p(x, c) - log q(c)] is a sum over i of K-term sums,
computed exactly and differentiated by autograd. Both runs start from the same point and use the
same optimiser; the score-function fit should land on the same means and ELBO.

>>> m = GaussianMixture.synthetic(n=30, seed=0)
>>> m.x.shape, m.k
(torch.Size([30]), 3)
"""

from __future__ import annotations

import math

import torch
import torch.distributions as D
from torch import nn

from ... import graphs
from ...baselines import LeaveOneOut
from ...core import seeded
from ...errors import ScoregradError
from ...estimators import Enumerate, Pathwise, ScoreFunction
from ..elbo import RaoBlackwellELBO
from ..guides import MeanFieldCategorical
from ..training import fit

__all__ = ["GaussianMixture", "BayesianGaussianMixture", "fit_gmm"]


class GaussianMixture(nn.Module):
    """Mixture of K Gaussians with learnable means; ``log_joint(c)`` for assignments c (n, N)."""

    def __init__(self, x: torch.Tensor, k: int = 3, sigma: float = 1.0, init_means=None):
        super().__init__()
        self.register_buffer("x", torch.as_tensor(x, dtype=torch.get_default_dtype()))
        self.k, self.sigma = int(k), float(sigma)
        init = torch.linspace(-1.0, 1.0, k) if init_means is None else torch.as_tensor(init_means)
        self.means = nn.Parameter(init.clone().to(self.x.dtype))

    @classmethod
    def synthetic(cls, n: int = 60, centres=(-4.0, 0.0, 4.0), sigma: float = 1.0, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        c = torch.randint(len(centres), (n,), generator=g)
        x = torch.tensor(centres)[c] + sigma * torch.randn(n, generator=g)
        return cls(x, k=len(centres), sigma=sigma)

    def _terms(self) -> torch.Tensor:
        """log π_k + log N(x_i; μ_k, σ²), shape (N, K)."""
        return D.Normal(self.means, self.sigma).log_prob(self.x[:, None]) - math.log(self.k)

    def log_joint_local(self, c: torch.Tensor) -> torch.Tensor:
        """Each assignment's own term (its Markov blanket given μ), shape (n, N)."""
        t = self._terms()
        return t.gather(1, c.long().T).T if c.dim() == 2 else t[torch.arange(t.shape[0]), c.long()]

    def log_joint(self, c: torch.Tensor) -> torch.Tensor:
        """log p(x, c) for assignments c of shape (n, N): shape (n,)."""
        return self.log_joint_local(c).sum(-1)

    def exact_elbo(self, guide: MeanFieldCategorical) -> torch.Tensor:
        """E_q[log p(x, c) - log q(c)] by enumerating each c_i's K values (differentiable)."""
        logq = torch.log_softmax(guide.logits, -1)
        return (logq.exp() * (self._terms() - logq)).sum()

    def graph(self, guide: MeanFieldCategorical, estimator):
        """The ELBO as a graph (``scoregrad.graphs``): the assignments in a plate over the data,
        each c_i's estimator seeing only its own term log π + log N(x_i; μ_{c_i}, σ²) - log q(c_i);
        the means get the pathwise gradient of the same terms."""

        def model(g):
            data = g.plate("data", self.x.shape[0])
            q = D.Categorical(logits=guide.logits)  # per data point, not one joint event
            c = g.sample("assignments", q, estimator, plates=data)
            g.cost("data", self.log_joint_local(c) - q.log_prob(c), plates=data)

        return model

    def log_evidence(self) -> torch.Tensor:
        """log p(x) at the current means: the ELBO's maximum over q."""
        return torch.logsumexp(self._terms(), -1).sum()


class BayesianGaussianMixture(nn.Module):
    """The mixture with the means as latents too, on the graph API (``scoregrad.graphs``):

        μ_k ~ N(0, τ²),  c_i ~ Categorical(1/K),  x_i | c_i, μ ~ N(μ_{c_i}, σ²),
        q(μ) q(c) = Π_k N(μ_k; m_k, e^{2 s_k}) Π_i Categorical(c_i; softmax(φ_i)).

    ``graph(estimator)`` is the ELBO as a graph: the means drawn by ``Pathwise``, the assignments
    in a plate over the data with ``estimator`` (each c_i's signal is its own data term only), the
    means' term log p(μ) - log q(μ) before them. ``exact_elbo()`` is the same ELBO in closed form
    (Gaussian expectations of the quadratic log-likelihood, enumeration over each c_i).

    >>> import torch, scoregrad as sg
    >>> m = BayesianGaussianMixture(torch.tensor([-4.0, 0.1, 3.9]), k=3)
    >>> loss = sg.graphs.expectation(m.graph(sg.Enumerate()), n=4, seed=0)
    >>> loss.backward(); m.loc.grad.shape, m.logits.grad.shape
    (torch.Size([3]), torch.Size([3, 3]))
    """

    def __init__(self, x, k: int = 3, sigma: float = 1.0, prior_scale: float = 10.0):
        super().__init__()
        self.register_buffer("x", torch.as_tensor(x, dtype=torch.get_default_dtype()))
        self.k, self.sigma, self.tau = int(k), float(sigma), float(prior_scale)
        dtype = self.x.dtype
        self.loc = nn.Parameter(torch.linspace(-1.0, 1.0, k, dtype=dtype))
        self.log_scale = nn.Parameter(torch.full((k,), -1.0, dtype=dtype))
        self.logits = nn.Parameter(torch.zeros(self.x.shape[0], k, dtype=dtype))

    def graph(self, estimator):
        x, k = self.x, self.k

        def model(g):
            data = g.plate("data", x.shape[0])
            qm = D.Normal(self.loc, self.log_scale.exp())
            mu = g.sample("means", qm, Pathwise())
            prior = D.Normal(torch.zeros_like(self.loc), self.tau)
            g.cost("means prior", (prior.log_prob(mu) - qm.log_prob(mu)).sum(-1))
            qc = D.Categorical(logits=self.logits)
            c = g.sample("assignments", qc, estimator, plates=data, depends_on=())
            centre = mu.gather(1, c)  # (n, N): each point's mean
            lik = D.Normal(centre, self.sigma).log_prob(x) - math.log(k)
            g.cost("data", lik - qc.log_prob(c), plates=data)

        return model

    def _expected_terms(self) -> torch.Tensor:
        """E_q(μ)[log π_k + log N(x_i; μ_k, σ²)], shape (N, K)."""
        var = (2 * self.log_scale).exp()
        sq = (self.x[:, None] - self.loc) ** 2 + var
        return (
            -0.5 * math.log(2 * math.pi * self.sigma**2)
            - sq / (2 * self.sigma**2)
            - math.log(self.k)
        )

    def exact_elbo(self) -> torch.Tensor:
        logq = torch.log_softmax(self.logits, -1)
        local = (logq.exp() * (self._expected_terms() - logq)).sum()
        qm = D.Normal(self.loc, self.log_scale.exp())
        prior = D.Normal(torch.zeros_like(self.loc), self.tau)
        return local - D.kl_divergence(qm, prior).sum()

    def responsibility_gap(self) -> float:
        """Largest gap between q(c) and its coordinate-ascent optimum given q(μ)."""
        best = torch.softmax(self._expected_terms(), -1)
        return float((best - torch.softmax(self.logits, -1)).abs().max())


def fit_gmm(
    method: str = "score",
    steps: int = 2000,
    n_samples: int = 8,
    lr: float = 0.05,
    seed: int = 0,
    data_seed: int = 0,
    n_data: int = 60,
    progress: bool = False,
    checkpoint=None,
    allow_changes: bool = False,
    bayesian: bool = False,
) -> dict:
    """Fit means and guide on the graph API: the assignments by the score function with a
    leave-one-out baseline per data point (``method='score'``) or by enumerating each one
    (``'enumerate'``); or by the Rao-Blackwellised ELBO estimator (``'rao-blackwell'``) or the
    exact enumerated ELBO (``'exact'``). Returns means, final exact ELBO, log evidence and the
    largest gap between the guide's and the exact posterior's responsibilities. With
    ``bayesian`` the means are latents too (``BayesianGaussianMixture``)."""
    methods = ("score", "enumerate", "rao-blackwell", "exact")
    if method not in methods:
        raise ScoregradError(f"unknown method {method!r}. Fix: use one of {', '.join(methods)}.")
    if bayesian:
        return _fit_bayesian(method, steps, n_samples, lr, seed, data_seed, n_data, progress,
                             checkpoint)  # fmt: skip
    with seeded(seed):  # initialisation on a forked RNG: the caller's RNG is untouched
        model = GaussianMixture.synthetic(n=n_data, seed=data_seed)
        guide = MeanFieldCategorical(model.x.shape[0], model.k)
    both = nn.ModuleDict({"model": model, "guide": guide})
    if method in GRAPH_ESTIMATORS:
        graph = model.graph(guide, GRAPH_ESTIMATORS[method]())

        def objective(step):
            return graphs.expectation(graph, n_samples)

        stateful = []
    elif method == "rao-blackwell":
        est = RaoBlackwellELBO(control_variate=True)

        def objective(step):
            return est(model, guide, n_samples)

        stateful = [est]
    else:

        def objective(step):
            return model.exact_elbo(guide)

        stateful = []
    res = fit(
        objective,
        both,
        steps,
        lr=lr,
        schedule="cosine",
        stateful=stateful,
        seed=seed,
        progress=progress,
        checkpoint=checkpoint,
        config={"model": "gmm", "method": method, "n": n_samples, "n_data": n_data,
                "data_seed": data_seed},
        allow_changes=allow_changes,
    )  # fmt: skip
    with torch.no_grad():
        post = torch.softmax(model._terms(), -1)
        resp = torch.softmax(guide.logits, -1)
        order = torch.argsort(model.means)
        return {
            "method": method,
            "means": model.means[order].tolist(),
            "elbo": float(model.exact_elbo(guide)),
            "log_evidence": float(model.log_evidence()),
            "max_responsibility_gap": float((post - resp).abs().max()),
            "history": res.history,
        }


#: method -> the assignments' estimator in the graph
GRAPH_ESTIMATORS = {"score": lambda: ScoreFunction(LeaveOneOut()), "enumerate": Enumerate}


def _fit_bayesian(method, steps, n_samples, lr, seed, data_seed, n_data, progress, checkpoint):
    """fit_gmm with the means as latents: the graph (score / enumerate) or the closed form."""
    data = GaussianMixture.synthetic(n=n_data, seed=data_seed)
    model = BayesianGaussianMixture(data.x, k=data.k, sigma=data.sigma)
    if method in GRAPH_ESTIMATORS:
        graph = model.graph(GRAPH_ESTIMATORS[method]())

        def objective(step):
            return graphs.expectation(graph, n_samples)
    elif method == "exact":

        def objective(step):
            return model.exact_elbo()
    else:
        raise ValueError(
            f"unknown method {method!r} for the Bayesian mixture; use 'score', 'enumerate' or "
            "'exact'."
        )
    res = fit(objective, model, steps, lr=lr, schedule="cosine", seed=seed, progress=progress,
              checkpoint=checkpoint)  # fmt: skip
    with torch.no_grad():
        return {
            "method": method,
            "means": sorted(model.loc.tolist()),
            "elbo": float(model.exact_elbo()),
            "max_responsibility_gap": model.responsibility_gap(),
            "history": res.history,
        }
