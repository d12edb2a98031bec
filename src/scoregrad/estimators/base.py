"""The contract every gradient estimator implements.

An estimator offers two doors onto one piece of machinery:

* ``contributions(evaluator, dist_fn, params, n, context)`` → ``Contributions``: per-sample values of
  f (after any value control variate) and per-sample gradient terms {name: (n, *param.shape)},
  plus the block size of the sampler. ``scoregrad.estimate_grad`` averages them over blocks and
  turns their spread into standard errors, so every estimator gets honest errors for free.
* ``surrogate(evaluator, dist, n, context)`` → (value, surrogate): a scalar whose value is the MC
  estimate of E[f] and whose gradient, with respect to whatever built ``dist``, is the estimator.
  ``scoregrad.expectation`` returns it for training loops.

This mirrors mc_gradients' uniform (function, samples, distribution) → (surrogate, Jacobians) contract.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import EstimatorNotApplicable


@dataclass
class Contributions:
    """Per-sample pieces of a gradient estimate; blocks of ``block`` consecutive rows are the
    independent units (1 for i.i.d. sampling)."""

    values: torch.Tensor
    grads: dict[str, torch.Tensor]
    block: int = 1


class Estimator:
    """Base class of gradient estimators (see the module docstring for the contract)."""

    name: str = "estimator"
    #: whether it learns across calls (``scoregrad.core.state``: state_dict round-trips exactly)
    stateful: bool = False

    def check(self, n: int) -> None:
        """Raise a clear error before any evaluation of f if n cannot work."""

    def contributions(self, evaluator, dist_fn, params, n, context=None) -> Contributions:
        raise NotImplementedError

    def surrogate(self, evaluator, dist, n, context=None) -> tuple[torch.Tensor, torch.Tensor]:
        raise EstimatorNotApplicable(
            f"{type(self).__name__} has no surrogate form for scoregrad.expectation; "
            "use scoregrad.estimate_grad."
        )

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
