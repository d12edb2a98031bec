"""One estimate's fixed inputs, shared by every method: the model at its parameters, the payoff,
the option batch, and per-chunk draws and payoff values.

Shapes: the model's parameters broadcast to ``B_dist``; the payoff's strikes add axes on the
right, giving the option batch ``B_tot``; paths get ``extra`` singleton axes after the sample axis
so a payoff only has to broadcast.
"""

from __future__ import annotations

import copy
from functools import cached_property

import numpy as np
import torch

from ...core import SampleModel, as_values
from ...errors import EstimatorNotApplicable
from ...sampling import IID
from ..parameters import broadcast_shapes

__all__ = ["Simulation", "Draw", "lift"]


def lift(t: torch.Tensor, extra: int) -> torch.Tensor:
    """Insert ``extra`` singleton axes after the sample axis (to broadcast against a batch)."""
    return t.reshape(t.shape[0], *([1] * extra), *t.shape[1:]) if extra else t


def _numpy_normals(out: torch.Tensor, gen: np.random.Generator) -> torch.Tensor:
    a = out.numpy()
    gen.standard_normal(out=a, dtype=a.dtype)
    return out


class Draw:
    """One chunk's draws: the path x (or standard normals z for closed-form weights) and block."""

    def __init__(self, x, z, block):
        self.x, self.z, self.block = x, z, block

    @property
    def size(self) -> int:
        return (self.z if self.x is None else self.x).shape[0]


class Simulation:
    """The inputs of one estimate. Parameters, the expanded parameters and the distribution are
    built on first use, so the one-date GBM kernel (``basis``), which needs none of them, pays
    for none of them."""

    def __init__(self, model, payoff, method, names, sampler, cv, baseline, dtype, device, engine):
        self.model, self.payoff, self.method = model, payoff, method
        self.names = list(names)
        self.sampler, self.cv, self.use_baseline = sampler, cv, baseline
        self.dtype, self.device = dtype, device
        self.B_dist = model.batch_shape()
        self.B_tot = broadcast_shapes(self.B_dist, payoff.batch_shape)
        self.extra = len(self.B_tot) - len(self.B_dist)
        payoff.validate(model.values["spot"])
        #: closed-form LR weights from standard normals (declared by the path distribution)
        self.analytic = model.paths.closed_form_weights and engine in ("auto", "analytic")
        if engine == "analytic" and not model.paths.closed_form_weights:
            raise EstimatorNotApplicable(
                "engine='analytic' has closed-form LR weights for GBM only; use engine='autograd'."
            )
        if method == "mixed" and payoff.smoothing_width_needed:
            self.payoff = copy.copy(payoff)  # ramp half-width ≈ one standard deviation of S_T
            self.payoff.width = payoff.default_width(self.pb)
        #: i.i.d. GBM with closed-form weights draws standard normals only (IID's own law)
        self.iid_normals = self.analytic and isinstance(sampler, IID)
        self.np_gen = None
        self.control_moments = None
        self._buf = {}

    @cached_property
    def params(self) -> dict[str, torch.Tensor]:
        """Detached parameter tensors in the estimate's dtype and device."""
        return {k: v.detach() for k, v in self.model.params(self.dtype, self.device).items()}

    @cached_property
    def pb(self) -> dict[str, torch.Tensor]:
        """Parameters broadcast to the model's batch shape."""
        return {k: v.expand(self.B_dist) for k, v in self.params.items()}

    @cached_property
    def dist0(self):
        """The path distribution at the parameters (no graph)."""
        return self.model.dist(**self.pb)

    def leaves(self, c: int) -> dict[str, torch.Tensor]:
        """Fresh leaf tensors of every parameter, one per path and option: (c, *B_tot)."""
        return {
            k: v.detach().expand(c, *self.B_tot).clone().requires_grad_()
            for k, v in self.params.items()
        }

    def draw(self, c: int) -> Draw:
        """c paths from the sampler; i.i.d. GBM with closed-form weights draws only z."""
        if self.iid_normals:
            shape = (c, *([1] * len(self.B_dist)), self.model.n_dates)
            buf = self._buf.get(shape)  # reused across chunks: no fresh pages per chunk
            if buf is None:
                buf = self._buf[shape] = torch.empty(shape, dtype=self.dtype, device=self.device)
            z = _numpy_normals(buf, self.np_gen) if self.np_gen is not None else buf.normal_()
            return Draw(None, z, 1)
        x, block = self.sampler.draw(SampleModel.of(self.dist0, c))
        z = self.dist0.noise(x) if self.analytic else None
        return Draw(x, z, block)

    def payoff_values(self, S, c, fn=None, keep_graph=False) -> torch.Tensor:
        """The payoff (or ``fn``) at prices S, checked: (c, *B_tot), finite, in the dtype."""
        out = (fn or self.payoff)(S)
        if (  # fast path: a float tensor of the right shape whose sum is finite needs no more
            isinstance(out, torch.Tensor)
            and out.shape == (c, *self.B_tot)
            and out.dtype == self.dtype
            and bool(torch.isfinite(out.sum()))
        ):
            return out if keep_graph else out.detach()
        return as_values(
            out,
            c,
            dtype=self.dtype,
            device=self.device,
            keep_graph=keep_graph,
            item_shape=tuple(self.B_tot),
        )
