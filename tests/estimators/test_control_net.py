"""RELAX's default control network: the hand-written ρ-gradient of (r, ∂r/∂z) is autograd's."""

import torch

from scoregrad.estimators._control_net import ItemMLP, _ValueAndInputGrad


def test_value_and_input_grad_backward_passes_gradcheck():
    gen = torch.Generator().manual_seed(0)
    n, h, k = 7, 5, 3
    x = torch.randn(n, k, dtype=torch.float64, generator=gen)
    shapes = [(h, k), (h,), (h, h), (h,), (1, h), (1,)]
    params = [
        torch.randn(s, dtype=torch.float64, generator=gen, requires_grad=True) for s in shapes
    ]
    assert torch.autograd.gradcheck(lambda *ps: _ValueAndInputGrad.apply(x, *ps), params)


def test_parameter_gradients_are_contiguous():
    # fused Adam reads a gradient in its parameter's layout (W̄₁ is built transposed)
    net = ItemMLP(4)
    z = torch.randn(6, 3)
    net(z, 0)
    r, dr = net.value_and_input_grad(z, 0)
    grads = torch.autograd.grad((r.sum() + (dr * z).sum()), list(net.parameters()))
    assert all(g.is_contiguous() for g in grads)
