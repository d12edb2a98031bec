"""A sigmoid belief network / binary VAE with Bernoulli latents on binarised images.

    z ~ Π_k Bernoulli(σ(b_k)),      x | z ~ Π_j Bernoulli(σ(dec(z)_j)),
    q(z | x) = Π_k Bernoulli(σ(enc(x)_k))

with 200 latents. *Linear*: enc and dec are single affine maps (the one-stochastic-layer linear
model of the REBAR, RELAX, ARM and DisARM papers). *Nonlinear*: two deterministic tanh layers of
200 units in both the encoder and the decoder (their "nonlinear" model).

The ELBO per image is estimated with n samples of z per image; the encoder gets the chosen
estimator's gradient (score function with a leave-one-out or learned baseline, VIMCO, ARM,
DisARM, REBAR/RELAX, Gumbel-softmax), the decoder and the prior get the pathwise gradient of the
same Monte Carlo objective. Reported: train/test ELBO, the 1000-sample importance-weighted test
bound, the encoder-gradient variance, and steps per second.

>>> m = BinaryVAE(x_dim=64, z_dim=8)
>>> x = torch.bernoulli(torch.full((5, 64), 0.3))
>>> m.log_joint(x)(m.q(x).sample((3,))).shape      # (samples, images)
torch.Size([3, 5])
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributions as D
import torch.nn.functional as F
from torch import nn

from ...baselines import Learned, LeaveOneOut
from ...core import seeded
from ...errors import EstimatorNotApplicable
from ...estimators.score_function import ScoreFunction
from ..elbo import ELBOEstimator, ScoreFunctionELBO, iw_bound
from ..training import fit

__all__ = ["BinaryVAE", "ESTIMATORS", "make_estimator", "batch_objective", "train", "evaluate"]


class BinaryVAE(nn.Module):
    """Encoder q(z|x), learned Bernoulli prior p(z) and decoder p(x|z) (see module docstring)."""

    def __init__(
        self,
        x_dim: int = 784,
        z_dim: int = 200,
        nonlinear: bool = False,
        hidden: int = 200,
        train_mean: torch.Tensor | None = None,
    ):
        super().__init__()
        self.x_dim, self.z_dim, self.nonlinear = x_dim, z_dim, nonlinear
        if nonlinear:
            self.encoder = nn.Sequential(
                nn.Linear(x_dim, hidden),
                nn.Tanh(),
                nn.Linear(hidden, hidden),
                nn.Tanh(),
                nn.Linear(hidden, z_dim),
            )
            self.decoder = nn.Sequential(
                nn.Linear(z_dim, hidden),
                nn.Tanh(),
                nn.Linear(hidden, hidden),
                nn.Tanh(),
                nn.Linear(hidden, x_dim),
            )
        else:
            self.encoder = nn.Linear(x_dim, z_dim)
            self.decoder = nn.Linear(z_dim, x_dim)
        self.prior_logits = nn.Parameter(torch.zeros(z_dim))
        mean = torch.full((x_dim,), 0.5) if train_mean is None else train_mean.float()
        self.register_buffer("x_mean", mean.clone())
        with torch.no_grad():  # start the decoder at the pixel marginals (standard practice)
            out = self.decoder[-1] if nonlinear else self.decoder
            out.bias.copy_(torch.logit(mean.clamp(1e-3, 1 - 1e-3)))

    def q(self, x: torch.Tensor) -> D.Bernoulli:
        """q(z | x): Bernoulli with batch shape (B, z_dim)."""
        return D.Bernoulli(logits=self.encoder(x - self.x_mean))

    def encoder_parameters(self) -> list[nn.Parameter]:
        return list(self.encoder.parameters())

    def log_joint(self, x: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
        """z of shape (n, B, z_dim) (binary, or relaxed in [0, 1]) -> log p(x_b, z_nb), (n, B)."""

        def fn(z):
            z = z.to(self.prior_logits.dtype)
            # Bernoulli log-pmf written for relaxed z too: z log σ(a) + (1 - z) log σ(-a)
            prior = (
                z * F.logsigmoid(self.prior_logits) + (1 - z) * F.logsigmoid(-self.prior_logits)
            ).sum(-1)
            logits = self.decoder(z)
            lik = -F.binary_cross_entropy_with_logits(
                logits, x.expand_as(logits), reduction="none"
            ).sum(-1)
            return prior + lik

        return fn


def _core_estimator(name: str, **kw):
    import scoregrad.estimators as E

    cls = getattr(E, name, None)
    if cls is None:
        raise EstimatorNotApplicable(
            f"the {name} estimator is not in this install of scoregrad.estimators; available "
            f"here: {', '.join(k for k in ESTIMATORS if _available(k))}."
        )
    return cls(**kw)


def _available(name: str) -> bool:
    spec = ESTIMATORS[name]
    core = spec.get("core")
    if core is None:
        return True
    import scoregrad.estimators as E

    return hasattr(E, core)


def _core(name: str, **kw):
    return lambda ctx: ScoreFunctionELBO(_core_estimator(name, **kw))


#: estimator name -> how to build it, samples (or antithetic pairs) per image per step, and the
#: evaluations of the log joint per image per step. Budgets are matched at two evaluations per
#: image where the method allows; REBAR needs three per sample, RELAX one plus its network.
ESTIMATORS: dict[str, dict] = {
    "reinforce-loo": {
        "n": 2,
        "evals": 2,
        "build": lambda ctx: ScoreFunctionELBO(ScoreFunction(LeaveOneOut())),
    },
    "nvil": {
        "n": 2,
        "evals": 2,
        "build": lambda ctx: ScoreFunctionELBO(ScoreFunction(_nvil_baseline(ctx))),
    },
    "vimco": {"n": 2, "evals": 2, "core": "VIMCO", "build": _core("VIMCO")},
    "arm": {"n": 1, "evals": 2, "core": "ARM", "build": _core("ARM")},
    "disarm": {"n": 1, "evals": 2, "core": "DisARM", "build": _core("DisARM")},
    "rebar": {"n": 1, "evals": 3, "core": "REBAR", "build": _core("REBAR")},
    "relax": {"n": 2, "evals": 2, "core": "RELAX", "build": _core("RELAX")},
    "gumbel-softmax": {
        "n": 2,
        "evals": 2,
        "core": "GumbelSoftmax",
        "build": _core("GumbelSoftmax", temperature=0.5),
    },
}


def _nvil_baseline(ctx) -> Learned:
    """NVIL's input-dependent baseline b(x): an MLP of the centred image, output bias started at
    the initial ELBO so it only has to learn the input dependence (Mnih & Gregor 2014)."""
    x_dim, init = ctx["x_dim"], ctx["init_value"]
    net = nn.Sequential(nn.Linear(x_dim, 100), nn.Tanh(), nn.Linear(100, 1))
    with torch.no_grad():
        net[-1].bias.fill_(init)
    return Learned(model=net, lr=3e-3)


def make_estimator(name: str, ctx: dict) -> tuple[ELBOEstimator, int]:
    if name not in ESTIMATORS:
        raise EstimatorNotApplicable(
            f"unknown estimator {name!r}; use one of {sorted(ESTIMATORS)}."
        )
    spec = ESTIMATORS[name]
    return spec["build"](ctx), spec["n"]


def batch_objective(model: BinaryVAE, est: ELBOEstimator, n: int, x: torch.Tensor):
    """The surrogate of the mean per-image ELBO (or multi-sample bound, for VIMCO) on images x."""
    s = est(model.log_joint(x), model.q(x), n, item_shape=(x.shape[0],), context=x)
    return s / x.shape[0]


@torch.no_grad()
def evaluate(
    model: BinaryVAE,
    x: torch.Tensor,
    elbo_samples: int = 100,
    iw_samples: int = 1000,
    batch_size: int = 100,
    seed: int = 0,
) -> dict:
    """Mean ELBO per image (``elbo_samples`` draws each) and the ``iw_samples``-sample
    importance-weighted bound per image, on the images x."""
    elbos, iws = [], []
    with seeded(seed):
        for i in range(0, x.shape[0], batch_size):
            xb = x[i : i + batch_size]
            q = model.q(xb)
            lj = model.log_joint(xb)
            z = q.sample((elbo_samples,))
            elbos.append((lj(z) - q.log_prob(z).sum(-1)).mean(0))
            if iw_samples:
                iws.append(iw_bound(lj, q, iw_samples, item_shape=(xb.shape[0],), chunk_size=100))
    out = {"elbo": float(torch.cat(elbos).mean())}
    if iw_samples:
        out["iw_bound"] = float(torch.cat(iws).mean())
    return out


def train(
    data,
    estimator: str = "reinforce-loo",
    steps: int = 1000,
    batch_size: int = 50,
    lr: float = 1e-3,
    nonlinear: bool = False,
    z_dim: int = 200,
    seed: int = 0,
    grad_var_every: int = 0,
    grad_var_repeats: int = 20,
    checkpoint=None,
    resume: bool = True,
    progress: bool = True,
    time_budget: float | None = None,
    device: str | torch.device = "cpu",
    callback=None,
    allow_changes: bool = False,
) -> dict:
    """Train a binary VAE with one estimator (Adam, lr ``lr``) on ``data.train``.

    ``time_budget`` (seconds) stops training early when exceeded; the number of steps done is
    reported. ``callback(step, model, batch)`` runs after every step (``batch(step)`` gives that
    step's images). Returns the model, history, steps/s and the training ELBO of the last 10% of
    steps.
    """
    device = torch.device(device)
    xtr = data.train.to(device)
    with seeded(seed):  # initialisation on a forked RNG: the caller's is neither seeded nor used
        model = BinaryVAE(data.dim, z_dim, nonlinear, train_mean=xtr.mean(0)).to(device)
        with torch.no_grad():
            x0 = xtr[:batch_size]
            q0 = model.q(x0)
            z0 = q0.sample()
            init_value = float((model.log_joint(x0)(z0[None]) - q0.log_prob(z0).sum(-1)).mean())
        est, n = make_estimator(estimator, {"x_dim": data.dim, "init_value": init_value})
    gen_seed = seed * 1_000_003

    def batch(step):
        g = torch.Generator().manual_seed(gen_seed + step)
        return xtr[torch.randint(xtr.shape[0], (batch_size,), generator=g).to(device)]

    def objective(step):
        return batch_objective(model, est, n, batch(step))

    res = fit(
        objective,
        model,
        steps,
        optimizer="adam",
        lr=lr,
        stateful=[est],
        seed=seed,
        checkpoint=checkpoint,
        resume=resume,
        grad_var_every=grad_var_every,
        grad_var_repeats=grad_var_repeats,
        grad_var_params=model.encoder_parameters(),
        time_budget=time_budget,
        progress=progress,
        callback=None if callback is None else (lambda step, h: callback(step, model, batch)),
        config={
            "model": "sbn", "layers": 1, "data": getattr(data, "name", "data"),
            "estimator": estimator,
            "batch_size": batch_size, "nonlinear": nonlinear, "z_dim": z_dim,
            "device": str(device),
        },
        allow_changes=allow_changes,
    )  # fmt: skip
    history, done, secs = res.history, res.steps, res.seconds
    e = history["elbo"]
    k = max(1, len(e) // 10)
    return {
        "model": model,
        "estimator": estimator,
        "samples_per_image": n,
        "steps": done,
        "seconds": secs,
        "steps_per_second": (done - (res.resumed_from or 0)) / max(secs, 1e-9),
        "train_elbo_last10pct": sum(e[-k:]) / k,
        "history": history,
    }
