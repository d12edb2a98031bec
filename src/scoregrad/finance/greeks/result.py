"""``GreeksResult``: a price and Greeks, each with its standard error."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

__all__ = ["GreeksResult"]


@dataclass
class GreeksResult:
    """Price and Greeks with standard errors; tensors shaped like the option batch.

    ``greeks``/``stderr``: {name: tensor}; ``z_scores(exact)`` gives (estimate - exact)/SE, which
    is ~N(0, 1) for an unbiased estimator. theta is -∂P/∂T (per year).
    """

    price: torch.Tensor
    price_se: torch.Tensor
    greeks: dict[str, torch.Tensor]
    stderr: dict[str, torch.Tensor]
    method: str
    n: int
    n_units: int
    seconds: float
    sampler: str = "iid"
    control_variate: str | None = None
    info: dict = field(default_factory=dict)

    def z_scores(self, exact: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {}
        for k, v in exact.items():
            est = self.price if k == "price" else self.greeks.get(k)
            se = self.price_se if k == "price" else self.stderr.get(k)
            if est is not None:
                out[k] = (est - torch.as_tensor(v).to(est)) / se
        return out

    def __repr__(self):
        def f(t):
            t = t.detach()
            return (
                f"{t.item():.6g}"
                if t.numel() == 1
                else str([round(x, 6) for x in t.flatten()[:6].tolist()])
            )

        g = ", ".join(f"{k}={f(v)}±{f(self.stderr[k])}" for k, v in self.greeks.items())
        return (
            f"GreeksResult(method={self.method}, price={f(self.price)}±{f(self.price_se)}, "
            f"{g}, n={self.n})"
        )
