"""Leave-one-out statistics (scoregrad.core.loo) against their brute-force definitions."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from scoregrad.baselines import LeaveOneOut
from scoregrad.core.loo import loo_coefficient, loo_mean, loo_regress
from scoregrad.core.shapes import broadcast_rows


def test_loo_coefficient_matches_brute_force():
    torch.manual_seed(0)
    n, block = 12, 3
    g, H = torch.randn(n, 2, dtype=torch.float64), torch.randn(n, 2, dtype=torch.float64)
    c = loo_coefficient(H, block, g=g)
    for i in range(n):
        keep = torch.tensor([j // block != i // block for j in range(n)])
        expect = (g[keep] * H[keep]).sum(0) / (H[keep] ** 2).sum(0)
        assert torch.allclose(c[i], expect)


def test_loo_coefficient_centred_form_matches_brute_force():
    torch.manual_seed(1)
    n = 9
    f, s = torch.randn(n, dtype=torch.float64), torch.randn(n, 3, dtype=torch.float64)
    H = s * torch.randn(n, 1, dtype=torch.float64)
    c = loo_coefficient(H, 1, f=f, s=s)
    for i in range(n):
        keep = torch.arange(n) != i
        fbar = f[keep].mean()
        expect = ((f[keep] - fbar)[:, None] * s[keep] * H[keep]).sum(0) / (H[keep] ** 2).sum(0)
        assert torch.allclose(c[i], expect)


def test_loo_coefficient_with_one_signal_per_element_matches_brute_force():
    torch.manual_seed(2)
    n = 7
    f, s = torch.randn(n, 3, dtype=torch.float64), torch.randn(n, 3, dtype=torch.float64)
    c = loo_coefficient(s, 1, f=f, s=s)
    for i in range(n):
        keep = torch.arange(n) != i
        fbar = f[keep].mean(0)
        expect = ((f[keep] - fbar) * s[keep] * s[keep]).sum(0) / (s[keep] ** 2).sum(0)
        assert torch.allclose(c[i], expect)


def test_loo_regress_matches_brute_force_least_squares():
    torch.manual_seed(3)
    n, block, k = 12, 2, 3
    y, C = torch.randn(n, dtype=torch.float64), torch.randn(n, k, dtype=torch.float64)
    out = loo_regress(y, C, block)
    for i in range(n):
        keep = torch.tensor([j // block != i // block for j in range(n)])
        coef = torch.linalg.lstsq(C[keep], y[keep].unsqueeze(-1)).solution.squeeze(-1)
        assert torch.allclose(out[i], y[i] - C[i] @ coef)


def test_leave_one_out_baseline_is_loo_mean():
    f = torch.randn(10, 3)
    assert torch.equal(LeaveOneOut()(f, block=2), loo_mean(f, 2))


def test_broadcast_rows_appends_singleton_axes():
    assert broadcast_rows(torch.ones(4), torch.ones(4, 2, 3)).shape == (4, 1, 1)
    assert broadcast_rows(torch.ones(4, 2), torch.ones(4, 2, 3)).shape == (4, 2, 1)
    assert broadcast_rows(torch.ones(4, 2), torch.ones(4, 2)).shape == (4, 2)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(2, 50), rest=st.sampled_from([(), (3,), (2, 2)]), block=st.sampled_from([1, 2])
)
def test_loo_mean_excludes_own_block(n, rest, block):
    n = n * block
    f = torch.randn(n, *rest, dtype=torch.float64)
    b = loo_mean(f, block)
    for i in range(0, n, max(1, n // 5)):  # spot-check a few rows against the definition
        u = i // block
        others = torch.cat([f[: u * block], f[(u + 1) * block :]])
        assert torch.allclose(b[i], others.mean(0))
