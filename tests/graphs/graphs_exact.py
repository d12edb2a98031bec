"""Small graphs whose expectations and gradients are known exactly (shared by the graph tests).

* ``chain``: z1 ~ Bernoulli(a) (2 bits), cost f1(z1), then z2 ~ Bernoulli(z1 W + c) (2 bits, depends
  on z1), cost f2(z1, z2) a black box (NumPy). Exact by enumerating the 16 joint values.
* ``plated``: a global bit zg ~ Bernoulli(a), then per data point i (plate of 3) two bits
  z_i ~ Bernoulli(w_i + v zg) and a cost per data point; exact over the 2·2⁶ joint values.
* ``continuous``: x ~ Normal(μ, e^s), then z ~ Bernoulli(kx + c), cost (x - 1)² + 2zx; exact by
  Gauss-Hermite quadrature over x (80 nodes: exact to rounding for this smooth integrand).
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch.distributions import Bernoulli, Normal


def _bits(k: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=k)), dtype=torch.float64)


class Chain:
    def __init__(self):
        d = torch.float64
        self.params = {
            "a": torch.tensor([0.3, -0.5], dtype=d, requires_grad=True),
            "W": torch.tensor([[0.5, -1.0], [1.5, 0.2]], dtype=d, requires_grad=True),
            "c": torch.tensor([0.1, -0.3], dtype=d, requires_grad=True),
        }

    @staticmethod
    def f1(z1):
        return ((z1 - 0.3) ** 2).sum(-1)

    @staticmethod
    def f2(z1, z2):  # a black box: NumPy in, NumPy out
        z1, z2 = np.asarray(z1), np.asarray(z2)
        return (z2 * np.array([1.0, -2.0])).sum(-1) + 3.0 * z1[..., 0] * z2[..., 1]

    def model(self, e1, e2):
        p = self.params

        def model(g):
            z1 = g.sample("z1", Bernoulli(logits=p["a"]), e1)
            g.cost("c1", self.f1(z1))
            z2 = g.sample("z2", Bernoulli(logits=z1 @ p["W"] + p["c"]), e2)
            g.cost("c2", torch.as_tensor(self.f2(z1.detach(), z2.detach())))

        return model

    def exact(self):
        p = self.params
        v = _bits(4)
        z1, z2 = v[:, :2], v[:, 2:]
        lp = Bernoulli(logits=p["a"]).log_prob(z1).sum(-1)
        lp = lp + Bernoulli(logits=z1 @ p["W"] + p["c"]).log_prob(z2).sum(-1)
        value = (lp.exp() * (self.f1(z1) + torch.as_tensor(self.f2(z1, z2)))).sum()
        return value, _grads(value, p)


class Plated:
    B = 3

    def __init__(self):
        d = torch.float64
        self.params = {
            "a": torch.tensor([0.4], dtype=d, requires_grad=True),
            "w": torch.tensor([[0.2, -0.4], [1.0, 0.0], [-0.7, 0.5]], dtype=d, requires_grad=True),
            "v": torch.tensor(1.2, dtype=d, requires_grad=True),
        }
        self.t = torch.tensor([[0.1, 0.9], [0.6, 0.2], [0.3, 0.3]], dtype=d)

    def local(self, z, zg):
        return ((z - self.t) ** 2).sum(-1) * (1.0 + zg)  # (..., B)

    @staticmethod
    def glob(zg):
        return ((zg - 0.2) ** 2).sum(-1)

    def model(self, eg, ez):
        p = self.params

        def model(g):
            data = g.plate("data", self.B)
            zg = g.sample("zg", Bernoulli(logits=p["a"]), eg)
            g.cost("global", self.glob(zg))
            logits = p["w"] + p["v"] * zg.unsqueeze(-1)  # (n, B, 2)
            z = g.sample("z", Bernoulli(logits=logits), ez, plates=data)
            g.cost("local", self.local(z, zg), plates=data)

        return model

    def exact(self):
        p = self.params
        v = _bits(1 + 2 * self.B)
        zg, z = v[:, :1], v[:, 1:].reshape(-1, self.B, 2)
        lp = Bernoulli(logits=p["a"]).log_prob(zg).sum(-1)
        lp = lp + Bernoulli(logits=p["w"] + p["v"] * zg.unsqueeze(-1)).log_prob(z).sum((-1, -2))
        value = (lp.exp() * (self.glob(zg) + self.local(z, zg).sum(-1))).sum()
        return value, _grads(value, p)


class Continuous:
    def __init__(self):
        d = torch.float64
        self.params = {
            "mu": torch.tensor([0.5], dtype=d, requires_grad=True),
            "s": torch.tensor([-0.3], dtype=d, requires_grad=True),
            "k": torch.tensor(0.8, dtype=d, requires_grad=True),
            "c": torch.tensor(-0.2, dtype=d, requires_grad=True),
        }

    def model(self, ex, ez):
        p = self.params

        def model(g):
            x = g.sample("x", Normal(p["mu"], p["s"].exp()), ex)
            z = g.sample("z", Bernoulli(logits=p["k"] * x + p["c"]), ez)
            g.cost("c", ((x - 1.0) ** 2).sum(-1) + 2.0 * (z * x).sum(-1))

        return model

    def exact(self):
        p = self.params
        t, w = np.polynomial.hermite_e.hermegauss(80)
        t = torch.as_tensor(t, dtype=torch.float64)
        w = torch.as_tensor(w / np.sqrt(2 * np.pi), dtype=torch.float64)
        x = p["mu"] + p["s"].exp() * t
        f = (x - 1.0) ** 2 + 2.0 * x * torch.sigmoid(p["k"] * x + p["c"])
        value = (w * f).sum()
        return value, _grads(value, p)


def _grads(value, params):
    gs = torch.autograd.grad(value, list(params.values()))
    return {k: g.detach() for k, g in zip(params, gs)}
