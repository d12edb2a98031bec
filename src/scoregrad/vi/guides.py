"""Variational families (guides): small ``nn.Module``s that own unconstrained parameters and build a
torch distribution from them.

A guide has two views of one family:

* ``guide.dist_fn(**guide.params())`` → the *batched* base distribution, one batch element per
  latent component (mean-field). The Rao-Blackwellised score-function ELBO needs this view, to
  give each component its own learning signal.
* ``guide()`` → the same distribution with the latent axes folded into its event
  (``torch.distributions.Independent``), i.e. the joint q(z) over the whole latent vector.

Parameters are unconstrained (log-concentrations, log-scales, logits), so any optimiser step keeps
the guide valid.

>>> import torch
>>> g = MeanFieldNormal(3)
>>> g().sample((5,)).shape, g().event_shape
(torch.Size([5, 3]), torch.Size([3]))
"""

from __future__ import annotations

import torch
import torch.distributions as D
from torch import nn

__all__ = [
    "Guide",
    "MeanFieldNormal",
    "BetaGuide",
    "MeanFieldBernoulli",
    "MeanFieldCategorical",
]


class Guide(nn.Module):
    """Base class: subclasses register parameters and implement ``dist_fn``."""

    @staticmethod
    def dist_fn(**params: torch.Tensor) -> D.Distribution:
        raise NotImplementedError

    def params(self) -> dict[str, torch.Tensor]:
        """The parameters ``dist_fn`` takes, by name."""
        return dict(self.named_parameters())

    def base(self) -> D.Distribution:
        """The batched (mean-field) distribution: batch shape = latent shape."""
        return self.dist_fn(**self.params())

    def forward(self) -> D.Distribution:
        """q(z) over the whole latent vector (event shape = latent shape)."""
        base = self.base()
        return D.Independent(base, len(base.batch_shape))


class MeanFieldNormal(Guide):
    """q(z) = Π_d N(z_d; loc_d, exp(log_scale_d)²).

    >>> g = MeanFieldNormal(2, init_scale=0.1)
    >>> g.base().stddev
    tensor([0.1000, 0.1000], grad_fn=<ExpBackward0>)
    """

    def __init__(
        self,
        dim: int,
        init_loc: float | torch.Tensor = 0.0,
        init_scale: float = 1.0,
        dtype: torch.dtype | None = None,
    ):
        super().__init__()
        dtype = dtype or torch.get_default_dtype()
        loc = torch.as_tensor(init_loc, dtype=dtype)
        self.loc = nn.Parameter(loc.expand(dim).clone())
        log_scale = float(torch.tensor(init_scale, dtype=torch.float64).log())
        self.log_scale = nn.Parameter(torch.full((dim,), log_scale, dtype=dtype))

    @staticmethod
    def dist_fn(loc, log_scale):
        return D.Normal(loc, log_scale.exp())


class BetaGuide(Guide):
    """q(z) = Π_d Beta(z_d; exp(log_a_d), exp(log_b_d)) for latents in (0, 1).

    >>> g = BetaGuide(1, init_a=15.0, init_b=15.0)
    >>> [round(float(v), 3) for v in g.concentrations()]
    [15.0, 15.0]
    """

    def __init__(self, dim: int = 1, init_a: float = 1.0, init_b: float = 1.0):
        super().__init__()
        self.log_a = nn.Parameter(torch.full((dim,), float(torch.tensor(init_a).log())))
        self.log_b = nn.Parameter(torch.full((dim,), float(torch.tensor(init_b).log())))

    @staticmethod
    def dist_fn(log_a, log_b):
        return D.Beta(log_a.exp(), log_b.exp())

    def concentrations(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(a, b) of the Beta guide, detached."""
        return self.log_a.detach().exp(), self.log_b.detach().exp()


class MeanFieldBernoulli(Guide):
    """q(z) = Π_d Bernoulli(z_d; sigmoid(logits_d)) for binary latents."""

    def __init__(self, dim: int, init_logits: float = 0.0):
        super().__init__()
        self.logits = nn.Parameter(torch.full((dim,), float(init_logits)))

    @staticmethod
    def dist_fn(logits):
        return D.Bernoulli(logits=logits)


class MeanFieldCategorical(Guide):
    """q(c) = Π_i Categorical(c_i; softmax(logits_i)) for N discrete assignments among K values.

    >>> g = MeanFieldCategorical(5, 3)
    >>> g().sample((2,)).shape
    torch.Size([2, 5])
    """

    def __init__(self, n: int, k: int, init_logits: torch.Tensor | None = None):
        super().__init__()
        init = torch.zeros(n, k) if init_logits is None else torch.as_tensor(init_logits)
        self.logits = nn.Parameter(init.clone().to(torch.get_default_dtype()))

    @staticmethod
    def dist_fn(logits):
        return D.Categorical(logits=logits)
