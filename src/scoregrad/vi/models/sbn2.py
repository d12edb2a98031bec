"""The two-layer linear sigmoid belief net on binarised MNIST, on the graph API.

    p(z2) p(z1 | z2) p(x | z1),    q(z1 | x) q(z2 | z1),    z1, z2 ∈ {0, 1}^200,

every conditional a Bernoulli whose logits are one affine map of its parent (the "two-layer linear"
model of REBAR, RELAX, ARM and DisARM). The ELBO is a graph of two choices in a plate over the
minibatch's images, with its terms placed right after the choices they depend on:

    log p(x | z1) - log q(z1 | x)              depends on z1 only
    log p(z1 | z2) + log p(z2) - log q(z2 | z1) depends on z1 and z2

so layer 2's estimator sees only the second term, and each image's choices only their image's
terms (``scoregrad.graphs``). Each layer has its own estimator: REINFORCE with a leave-one-out
baseline, NVIL (a baseline learned from the layer's input), ARM, DisARM or RELAX (its control
network per layer); VIMCO is the K-sample bound's own estimator over both layers. The decoder and
the prior get pathwise gradients of the same objective.

>>> import torch, scoregrad as sg
>>> m = SBN2(x_dim=16, h1=4, h2=3)
>>> x = torch.bernoulli(torch.full((5, 16), 0.3))
>>> est1, est2 = layer_estimators("disarm", {})
>>> loss = sg.graphs.expectation(m.graph(x, est1, est2), n=2, seed=0)   # ELBO, summed over images
>>> loss.backward(); m.enc1.weight.grad.shape, m.enc2.weight.grad.shape
(torch.Size([4, 16]), torch.Size([3, 4]))
"""

from __future__ import annotations

import math

import torch
import torch.distributions as D
from torch import nn

from ... import graphs
from ...baselines import Learned, LeaveOneOut
from ...core.seeding import seeded
from ...errors import EstimatorNotApplicable
from ...estimators import ARM, RELAX, DisARM, ScoreFunction
from ...estimators.multisample import vimco_signals
from ..training import fit, gradient_variance

__all__ = ["SBN2", "ESTIMATORS2", "layer_estimators", "train2", "evaluate2"]


class SBN2(nn.Module):
    """Two stochastic layers of Bernoulli latents, linear conditionals (see module docstring)."""

    def __init__(self, x_dim=784, h1=200, h2=200, train_mean: torch.Tensor | None = None):
        super().__init__()
        self.enc1, self.enc2 = nn.Linear(x_dim, h1), nn.Linear(h1, h2)
        self.dec2, self.dec1 = nn.Linear(h2, h1), nn.Linear(h1, x_dim)
        self.prior_logits = nn.Parameter(torch.zeros(h2))
        mean = torch.full((x_dim,), 0.5) if train_mean is None else train_mean.float()
        self.register_buffer("x_mean", mean.clone())
        with torch.no_grad():  # start the decoder at the pixel marginals (standard practice)
            self.dec1.bias.copy_(torch.logit(mean.clamp(1e-3, 1 - 1e-3)))

    def q1(self, x):
        return D.Bernoulli(logits=self.enc1(x - self.x_mean))

    def q2(self, z1):
        return D.Bernoulli(logits=self.enc2(2.0 * z1 - 1.0))

    def p_x(self, z1):
        return D.Bernoulli(logits=self.dec1(2.0 * z1 - 1.0))

    def p_z1(self, z2):
        return D.Bernoulli(logits=self.dec2(2.0 * z2 - 1.0))

    def graph(self, x, est1, est2):
        """The ELBO of images x (B, x_dim) as a graph model (costs are log-weight terms)."""

        def model(g):
            data = g.plate("data", x.shape[0])
            q1 = self.q1(x)
            z1 = g.sample("z1", q1, est1, plates=data, context=x)
            g.cost("x|z1", self.p_x(z1).log_prob(x).sum(-1) - q1.log_prob(z1).sum(-1), plates=data)
            q2 = self.q2(z1)
            z2 = g.sample("z2", q2, est2, plates=data, context=z1, expand=False)  # built from z1
            prior = D.Bernoulli(logits=self.prior_logits)
            lp = self.p_z1(z2).log_prob(z1).sum(-1) + prior.log_prob(z2).sum(-1)
            g.cost("z1,z2", lp - g.log_prob("z2"), plates=data)

        return model

    def log_weights(self, x, k: int):
        """k draws per image: log w = log p(x, z1, z2) - log q(z1, z2 | x) and log q, (k, B)."""
        q1 = self.q1(x)
        z1 = q1.sample((k,))
        q2 = self.q2(z1)
        z2 = q2.sample()
        lq = q1.log_prob(z1).sum(-1) + q2.log_prob(z2).sum(-1)
        lp = self.p_x(z1).log_prob(x).sum(-1) + self.p_z1(z2).log_prob(z1).sum(-1)
        lp = lp + D.Bernoulli(logits=self.prior_logits).log_prob(z2).sum(-1)
        return lp - lq, lq

    def layers(self) -> dict[str, list[nn.Parameter]]:
        return {"layer1": list(self.enc1.parameters()), "layer2": list(self.enc2.parameters())}


def vimco_objective(model: SBN2, x, k: int) -> torch.Tensor:
    """VIMCO's surrogate of the K-sample bound log (1/K) Σ w_k, summed over images (Mnih & Rezende
    2016): the pathwise part through log w plus (L̂ - L̂_{-k}) ∇ log q(z1_k, z2_k)."""
    log_w, lq = model.log_weights(x, k)
    bound = torch.logsumexp(log_w, 0) - math.log(k)
    _, signal = vimco_signals(log_w)
    return bound.sum() + (signal * (lq - lq.detach())).sum()


class LayerEstimators:
    """The two layers' estimators as one stateful object (baselines, RELAX controls)."""

    def __init__(self, est1, est2):
        self.layers = (est1, est2)

    def state_dict(self):
        return {f"layer{i + 1}": e.state_dict() for i, e in enumerate(self.layers) if e is not None}

    def load_state_dict(self, state):
        for i, e in enumerate(self.layers):
            if e is not None:
                e.load_state_dict(state[f"layer{i + 1}"])


def _nvil(inputs: int, init: float) -> Learned:
    net = nn.Sequential(nn.Linear(inputs, 100), nn.Tanh(), nn.Linear(100, 1))
    with torch.no_grad():
        net[-1].bias.fill_(init)
    return Learned(model=net, lr=3e-3)


#: estimator -> samples per image per step (n; VIMCO: K) and the per-layer builder
ESTIMATORS2: dict[str, dict] = {
    "reinforce-loo": {"n": 2},
    "nvil": {"n": 2},
    "arm": {"n": 1},
    "disarm": {"n": 1},
    "relax": {"n": 2},
    "vimco": {"n": 2},
}


def layer_estimators(name: str, ctx: dict):
    """(layer-1 estimator, layer-2 estimator) for ``name`` (VIMCO: None, None)."""
    if name not in ESTIMATORS2:
        raise EstimatorNotApplicable(
            f"unknown estimator {name!r} for the two-layer SBN; use one of {sorted(ESTIMATORS2)}."
        )
    if name == "reinforce-loo":
        return ScoreFunction(LeaveOneOut()), ScoreFunction(LeaveOneOut())
    if name == "nvil":
        return (
            ScoreFunction(_nvil(ctx["x_dim"], ctx.get("init1", 0.0))),
            ScoreFunction(_nvil(ctx["h1"], ctx.get("init2", 0.0))),
        )
    if name == "arm":
        return ARM(), ARM()
    if name == "disarm":
        return DisARM(), DisARM()
    if name == "relax":
        return RELAX(), RELAX()
    return None, None


def _initial_signals(model: SBN2, x, n: int) -> dict:
    """Mean downstream values of each layer at the start (NVIL's baselines start there)."""
    with torch.no_grad(), seeded(0):
        ex = graphs.execute(model.graph(x, None, None), n)
        s = graphs.Structure(ex.graph)
        return {
            "init1": float(s.downstream("z1").mean()),
            "init2": float(s.downstream("z2").mean()),
        }


def make_objective(model: SBN2, name: str, ests, n: int):
    """(x, seed) -> surrogate of the mean per-image ELBO (VIMCO: K-sample bound)."""

    def objective(x, seed=None):
        if name == "vimco":
            if seed is None:
                return vimco_objective(model, x, n) / x.shape[0]
            with seeded(seed):
                return vimco_objective(model, x, n) / x.shape[0]
        graph = model.graph(x, *ests.layers)
        return graphs.expectation(graph, n, seed=seed) / x.shape[0]

    return objective


@torch.no_grad()
def evaluate2(model: SBN2, x, samples: int = 10, batch_size: int = 100, seed: int = 0) -> dict:
    """Mean ELBO per image (``samples`` draws each) on images x."""
    out = []
    with seeded(seed):
        for i in range(0, x.shape[0], batch_size):
            log_w, _ = model.log_weights(x[i : i + batch_size], samples)
            out.append(log_w.mean(0))
    return {"elbo": float(torch.cat(out).mean())}


def train2(
    data,
    estimator: str = "reinforce-loo",
    steps: int = 1000,
    batch_size: int = 50,
    lr: float = 1e-3,
    hidden: int = 200,
    seed: int = 0,
    grad_var_repeats: int = 20,
    checkpoint=None,
    resume: bool = True,
    progress: bool = True,
    time_budget: float | None = None,
    device: str | torch.device = "cpu",
    allow_changes: bool = False,
) -> dict:
    """Train the two-layer SBN with one estimator per layer (Adam); returns the model, steps,
    seconds, training ELBO of the last 10% of steps and each layer's gradient variance (mean over
    the layer's weights, ``grad_var_repeats`` draws at the final parameters and one minibatch)."""
    device = torch.device(device)
    xtr = data.train.to(device)
    with seeded(seed):
        model = SBN2(data.dim, hidden, hidden, train_mean=xtr.mean(0)).to(device)
    n = ESTIMATORS2.get(estimator, {}).get("n", 1)
    ctx = {"x_dim": data.dim, "h1": hidden}
    if estimator == "nvil":
        ctx.update(_initial_signals(model, xtr[:batch_size], n))
    ests = LayerEstimators(*layer_estimators(estimator, ctx))
    objective = make_objective(model, estimator, ests, n)
    gen_seed = seed * 1_000_003

    def batch(step):
        g = torch.Generator().manual_seed(gen_seed + step)
        return xtr[torch.randint(xtr.shape[0], (batch_size,), generator=g).to(device)]

    res = fit(
        lambda step: objective(batch(step), seed=gen_seed + step),
        model,
        steps,
        optimizer="adam",
        lr=lr,
        stateful=[ests],
        seed=seed,
        checkpoint=checkpoint,
        resume=resume,
        time_budget=time_budget,
        progress=progress,
        config={
            "model": "sbn2", "layers": 2, "data": getattr(data, "name", "data"),
            "estimator": estimator, "batch_size": batch_size, "hidden": hidden,
            "device": str(device),
        },
        allow_changes=allow_changes,
    )  # fmt: skip
    e = res.history["elbo"]
    k = max(1, len(e) // 10)
    variance = {}
    params = list(model.parameters())
    for layer, measure in model.layers().items():
        variance[layer] = gradient_variance(
            lambda step: objective(batch(step)), params, res.steps, grad_var_repeats,
            stateful=[ests], seed=seed, measure=measure,
        )  # fmt: skip
    return {
        "model": model,
        "estimator": estimator,
        "samples_per_image": n,
        "steps": res.steps,
        "seconds": res.seconds,
        "train_elbo_last10pct": sum(e[-k:]) / k,
        "grad_variance": variance,
        "history": res.history,
    }
