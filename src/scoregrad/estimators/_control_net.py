"""RELAX's default control network r_ρ(z), with its input gradient and that gradient's own
ρ-gradient written out.

RELAX needs r(z), ∂r/∂z and, for the variance loss, the gradient in ρ of a loss built from both.
Through autograd that is a double backward (or a first-order graph of the hand-written input
gradient, with autograd's generic backward of every op). Here ``_ValueAndInputGrad`` is one
``torch.autograd.Function``: its forward gives (r, ∂r/∂z) and its backward the chain rule of
both by hand, with in-place work on the (rows × hidden) temporaries and matrix layouts that
torch's CPU kernels run fast (a (rows × hidden) @ (hidden × 3) product is ~3× faster against a
contiguous transposed weight).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import StateError


def _tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh(x) = 2σ(2x) - 1: the same function, written through the sigmoid, which torch's CPU
    kernels compute several times faster than tanh (158 µs against 38 µs on 2000×32 float32,
    torch 2.13, AVX512); its derivative is 1 - tanh²."""
    return torch.sigmoid(2.0 * x) * 2.0 - 1.0


def _tanh_(x: torch.Tensor) -> torch.Tensor:
    """``_tanh`` in place (the same operations, so the same numbers)."""
    return x.mul_(2.0).sigmoid_().mul_(2.0).sub_(1.0)


class _Tanh(nn.Module):
    """``_tanh`` as a layer (no parameters: state_dicts are those of an ``nn.Tanh`` network)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _tanh(x)


class _ValueAndInputGrad(torch.autograd.Function):
    """(r, ∂r/∂x) of r = w₃·h₂ + b₃, h₂ = tanh(W₂h₁ + b₂), h₁ = tanh(W₁x + b₁), row by row:
    with mₖ = 1 - hₖ², d₂ = m₂ ⊙ w₃, e = d₂W₂, d₁ = e ⊙ m₁, ∂r/∂x = d₁W₁.

    Backward (x is data, no gradient) from ḡ = ∂ℓ/∂r and D̄ = ∂ℓ/∂(∂r/∂x):
    d̄₁ = D̄W₁ᵀ, ē = d̄₁ ⊙ m₁, d̄₂ = ēW₂ᵀ, h̄₂ = w₃ ⊙ (ḡ - 2h₂ ⊙ d̄₂), ā₂ = h̄₂ ⊙ m₂,
    h̄₁ = -2h₁ ⊙ d̄₁ ⊙ e + ā₂W₂, ā₁ = h̄₁ ⊙ m₁; W̄₁ = d₁ᵀD̄ + ā₁ᵀx, W̄₂ = d₂ᵀē + ā₂ᵀh₁,
    w̄₃ = Σ (d̄₂ ⊙ m₂ + ḡh₂), and the biases the row sums of ā₁, ā₂, ḡ."""

    @staticmethod
    def forward(ctx, x, w1, b1, w2, b2, w3, b3):
        h1 = _tanh_(F.linear(x, w1, b1))
        h2 = _tanh_(F.linear(h1, w2, b2))
        r = F.linear(h2, w3, b3)
        m2 = 1.0 - h2 * h2
        d2 = m2 * w3
        e = d2 @ w2
        m1 = 1.0 - h1 * h1
        d1 = e * m1
        dr = F.linear(d1, w1.t().contiguous())  # d₁W₁ (3× faster than d1 @ w1 on CPU)
        ctx.save_for_backward(x, w1, w2, w3, h1, h2, m1, m2, d2, e, d1)
        return r, dr

    @staticmethod
    def backward(ctx, g_r, g_dr):
        x, w1, w2, w3, h1, h2, m1, m2, d2, e, d1 = ctx.saved_tensors
        g_dr = g_dr.contiguous()
        g_d1 = F.linear(g_dr, w1)
        g_e = g_d1 * m1
        g_d2 = F.linear(g_e, w2)
        g_w3 = (g_d2 * m2).sum(0, keepdim=True).add_(g_r.t() @ h2)
        g_a2 = g_d2.mul_(h2).mul_(-2.0).add_(g_r).mul_(w3).mul_(m2)  # h̄₂ ⊙ m₂, in g_d2's place
        g_h1 = g_d1.mul_(e).mul_(h1).mul_(-2.0).addmm_(g_a2, w2)  # in g_d1's place
        g_a1 = g_h1.mul_(m1)
        g_w2 = torch.addmm(d2.t() @ g_e, g_a2.t(), h1)
        # W̄₁ transposed, (3 × hidden) products being the fast layout; made contiguous, as fused
        # Adam reads a gradient's memory in its parameter's layout
        g_w1 = (g_dr.t() @ d1).add_(x.t() @ g_a1).t().contiguous()
        return None, g_w1, g_a1.sum(0), g_w2, g_a2.sum(0), g_w3, g_r.sum(0)


class ItemMLP(nn.Module):
    """r_ρ(z): an MLP on each item's latent vector (the trailing, non-item dimensions).

    It declares ``value_and_input_grad``: r and ∂r/∂z by the chain rule written out (and their
    ρ-gradient by hand, ``_ValueAndInputGrad``), so RELAX differentiates the control once (a
    first-order graph in ρ) instead of twice."""

    def __init__(self, hidden: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.LazyLinear(hidden), _Tanh(), nn.Linear(hidden, hidden), _Tanh(),
            nn.Linear(hidden, 1),
        )  # fmt: skip
        # start as c ≡ 0 (plain REINFORCE) rather than at a random function, which can have far
        # more variance than no control at all; the variance objective then moves it
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, z: torch.Tensor, item_dims: int) -> torch.Tensor:
        lead = z.shape[: 1 + item_dims]
        x = z.reshape(*lead, -1)
        self._check_width(x.shape[-1])
        return self.net(x).squeeze(-1)

    def _check_width(self, width: int) -> None:
        """Refuse latent vectors of another width than the network was built for (its first
        problem's), which would otherwise fail inside a matrix product."""
        first = self.net[0]
        if isinstance(first.weight, nn.parameter.UninitializedParameter):
            return
        built = first.weight.shape[1]  # (in_features stays 0 when load_state_dict fills it)
        if built != width:
            raise StateError(
                f"RELAX's control network was built for latent vectors of width {built} per "
                f"item (the problem it first ran on); this problem's have width {width}. Fix: a "
                "new RELAX() for each problem (its network learns that problem), or pass "
                "control= a network for this width."
            )

    def value_and_input_grad(self, z: torch.Tensor, item_dims: int):
        """(r(z), ∂r/∂z), differentiable in ρ (not in z)."""
        lead = z.shape[: 1 + item_dims]
        x = z.detach().reshape(lead.numel(), -1)
        self._check_width(x.shape[-1])
        first, _, second, _, last = self.net
        if isinstance(first.weight, nn.parameter.UninitializedParameter):
            with torch.no_grad():
                first(x[:1])  # materialise the lazy layer (as a first forward call would)
        ps = (first.weight, first.bias, second.weight, second.bias, last.weight, last.bias)
        r, dr = _ValueAndInputGrad.apply(x, *ps)
        return r.reshape(lead), dr.reshape(z.shape)
