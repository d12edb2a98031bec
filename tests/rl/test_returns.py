import torch

from scoregrad.rl.returns import discounted_return, masked_mean, normalize, reward_to_go


def _brute(r, m, gamma):
    B, T = r.shape
    out = torch.zeros_like(r)
    for i in range(B):
        for t in range(T):
            if m[i, t]:
                out[i, t] = sum(gamma ** (k - t) * r[i, k] * m[i, k] for k in range(t, T))
    return out


def test_reward_to_go_matches_definition_with_padding():
    g = torch.Generator().manual_seed(0)
    r = torch.randn(5, 7, generator=g, dtype=torch.float64)
    lengths = torch.tensor([7, 1, 3, 5, 2])
    m = torch.arange(7) < lengths[:, None]
    r_padded = torch.where(m, r, torch.full_like(r, 99.0))  # junk on padding must be ignored
    for gamma in (1.0, 0.9, 0.0):
        G = reward_to_go(r_padded, m, gamma)
        torch.testing.assert_close(G, _brute(r, m, gamma))
        assert (G[~m] == 0).all()


def test_discounted_return_equals_rtg_at_zero():
    r = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 0.0]])
    m = torch.tensor([[True, True, True], [True, True, False]])
    torch.testing.assert_close(discounted_return(r, m, 0.5), reward_to_go(r, m, 0.5)[:, 0])
    torch.testing.assert_close(discounted_return(r, m, 0.5), torch.tensor([2.75, 6.5]))


def test_normalize_uses_only_unmasked_entries():
    x = torch.tensor([[1.0, 2.0, 50.0], [3.0, 100.0, -7.0]])
    m = torch.tensor([[True, True, False], [True, False, False]])
    z = normalize(x, m)
    vals = z[m]
    assert abs(float(vals.mean())) < 1e-6 and abs(float(vals.std()) - 1.0) < 1e-5
    assert (z[~m] == 0).all()
    assert float(masked_mean(x, m)) == 2.0


def test_normalize_single_entry_is_zero_not_nan():
    z = normalize(torch.tensor([[5.0]]), torch.tensor([[True]]))
    assert torch.isfinite(z).all() and float(z) == 0.0


def test_normalize_returns_zero_when_spread_is_round_off():
    """Advantages that are zero up to float round-off (all episodes had the same returns) must
    not be blown up to unit scale by dividing by their own tiny std."""
    from scoregrad.baselines import LeaveOneOut

    G = torch.full((8, 5), -63.39676, dtype=torch.float32)  # identical returns, e.g. Acrobot
    m = torch.ones(8, 5, dtype=torch.bool)
    A = G - LeaveOneOut()(G)
    z = normalize(A, m, tol=1e-5 * float(G.abs().max()))
    assert (z == 0).all()
    assert (normalize(torch.tensor([[1.0, 2.0]]), torch.ones(1, 2, dtype=torch.bool), tol=1e-4)
            .abs().sum() > 1)  # fmt: skip
