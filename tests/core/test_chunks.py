"""Chunk plans: the element budget, whole groups, and the per-door cap on samples per chunk."""

import torch
from torch.distributions import Bernoulli

import scoregrad as sg
from scoregrad.core.chunks import CHUNK_ELEMENTS, chunk_sizes


def test_budget_whole_groups_and_cap():
    sizes = chunk_sizes(10_000, CHUNK_ELEMENTS // 1000, 2, None)
    assert sum(sizes) == 10_000 and max(sizes) <= 1000 and all(s % 2 == 0 for s in sizes)
    assert max(chunk_sizes(10_000, 1, 1, None, most=512)) <= 512  # the cap binds
    assert max(chunk_sizes(10_000, CHUNK_ELEMENTS, 1, None, most=512)) == 1  # the budget binds
    assert chunk_sizes(10_000, 1, 1, 2500, most=512) == [2500] * 4  # a caller's size is kept


def test_graph_door_chunks_by_the_parameters_it_differentiates(monkeypatch):
    """A graph's per-sample gradients hold one row of every parameter per sample: with many
    parameters its chunks shrink below MAX_CHUNK (a 10⁶-parameter net at n = 1024 held 6.3 GB)."""
    from scoregrad.graphs import doors

    seen = []
    real = doors.execute

    def recording(model, m, **kw):
        seen.append(m)
        return real(model, m, **kw)

    monkeypatch.setattr(doors, "execute", recording)
    net = torch.nn.Linear(300, 300)
    x = torch.ones(300)

    def model(g):
        z = g.sample("z", Bernoulli(logits=net(x)), sg.ScoreFunction())
        g.cost("c", ((z - 0.45) ** 2).sum(-1))

    sg.graphs.estimate_grad(model, dict(net.named_parameters()), n=64, seed=0)
    per = sum(p.numel() for p in net.parameters()) + 8
    assert sum(seen) == 64 and max(seen) <= max(1, CHUNK_ELEMENTS // per)
