"""GAE(λ) against hand computations, and the bootstrap at truncation versus termination."""

import torch

from scoregrad.rl.advantages import gae


def _col(*x):
    return torch.tensor(x, dtype=torch.float64).unsqueeze(1)


def test_gae_matches_a_hand_computation():
    r, v = _col(1.0, 2.0, 3.0), _col(0.5, 1.0, 1.5)
    nv = _col(1.0, 1.5, 4.0)  # V of the next observation; the last is the batch-end bootstrap
    no = torch.zeros(3, 1, dtype=torch.bool)
    g, lam = 0.9, 0.8
    d = [1 + g * 1.0 - 0.5, 2 + g * 1.5 - 1.0, 3 + g * 4.0 - 1.5]
    a2 = d[2]
    a1 = d[1] + g * lam * a2
    a0 = d[0] + g * lam * a1
    out = gae(r, v, nv, no, no, gamma=g, lam=lam).squeeze(1)
    assert torch.allclose(out, torch.tensor([a0, a1, a2], dtype=torch.float64))
    # λ = 1, V = 0, no cuts: the discounted reward-to-go
    term = _col(0, 0, 1).bool()
    z = torch.zeros(3, 1, dtype=torch.float64)
    out = gae(r, z, z, term, term, gamma=g, lam=1.0).squeeze(1)
    assert torch.allclose(out, torch.tensor([1 + g * 2 + g * g * 3, 2 + g * 3, 3.0]).double())
    # λ = 0: the one-step TD error
    out = gae(r, v, nv, no, no, gamma=g, lam=0.0).squeeze(1)
    assert torch.allclose(out, torch.tensor(d, dtype=torch.float64))


def test_truncation_bootstraps_and_termination_does_not():
    r, v, nv = _col(1.0, 1.0), _col(0.0, 0.0), _col(5.0, 7.0)
    ended = _col(1, 0).bool()  # the first episode ends at step 0, a new one runs at step 1
    terminated = gae(r, v, nv, ended, ended, gamma=0.5, lam=1.0).squeeze(1)
    truncated = gae(r, v, nv, torch.zeros_like(ended), ended, gamma=0.5, lam=1.0).squeeze(1)
    assert terminated.tolist() == [1.0, 1.0 + 0.5 * 7.0]  # 0 after a termination
    assert truncated.tolist() == [1.0 + 0.5 * 5.0, 1.0 + 0.5 * 7.0]  # V(final obs) after a cut
    # and the λ-recursion never crosses an episode end
    assert gae(r, v, nv, ended, ended, gamma=0.5, lam=0.9)[0, 0] == 1.0
