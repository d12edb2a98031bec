"""The state contract shared by every stateful estimator, baseline and control variate.

An object that learns across calls (a moving average, a learned baseline, RELAX's network, η,
temperature and optimiser) declares ``stateful = True``. Its ``state_dict()`` is a *snapshot*:

* plain data only: tensors, numbers, strings, booleans, ``None``, and dicts/lists/tuples of
  them, so ``torch.save`` + ``torch.load(weights_only=True)`` round-trips it (no pickled objects);
* detached copies, so training on after taking it does not change it;
* complete: ``load_state_dict`` into a *fresh* object built with the same arguments reproduces
  the original's next estimate bit for bit (networks built lazily are rebuilt from the saved
  weights, optimiser moments included).

>>> import torch
>>> w = torch.ones(2, requires_grad=True)
>>> s = snapshot({"w": w, "steps": 3, "opt": {"lr": 0.1, "state": [w]}})
>>> _ = w.data.add_(1.0)
>>> s["w"].tolist(), s["w"].requires_grad, s["opt"]["state"][0].tolist()
([1.0, 1.0], False, [1.0, 1.0])
"""

from __future__ import annotations

import torch

__all__ = ["snapshot"]


def snapshot(state):
    """A copy of ``state`` with every tensor detached and cloned (containers rebuilt)."""
    if isinstance(state, torch.Tensor):
        return state.detach().clone()
    if isinstance(state, dict):
        return {k: snapshot(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(snapshot(v) for v in state)
    return state
