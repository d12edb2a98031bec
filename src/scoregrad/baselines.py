"""Baselines b for the score-function estimator: g = (f(x) - b) ∇θ log p(x; θ).

Any b that is independent of the sample it multiplies leaves the estimator unbiased, because
E[∇θ log p(x; θ)] = 0. Each baseline here is a small object with its state on it (no globals):

* ``NoBaseline``: b = 0 (plain REINFORCE).
* ``Constant(c)``: a fixed number.
* ``MovingAverage(decay)``: a bias-corrected exponential moving average of f from *earlier* calls
  (Williams 1992; the bias correction is Adam's, Kingma & Ba 2015).
* ``LeaveOneOut()``: for sample i, the mean of f over the other samples (RLOO; Kool, van Hoof,
  Welling 2019, "Buy 4 REINFORCE samples, get a baseline for free!").
* ``Learned(model)``: a torch module predicting f from a context, fitted by regression on the
  squared error after each call (NVIL; Mnih & Gregor 2014).

Every baseline is called as ``b = baseline(f_values, block=k, context=None)`` with f_values of shape
(n, *rest) and returns b of the same shape, *detached*. ``block`` groups consecutive samples that
are not independent of each other (antithetic pairs, quasi-random replicates): a leave-one-out
baseline then leaves out the sample's whole block. After the estimate, ``update(f_values, context)``
lets a stateful baseline learn; it is the caller's job (the estimators do it).

State contract: a baseline that learns declares ``stateful = True``; ``state_dict()`` holds only
tensors, numbers, strings, ``None`` and dicts/lists of them (so ``torch.load(weights_only=True)``
reads it back), and ``load_state_dict`` into a *fresh* baseline built with the same arguments
makes the next estimate bit for bit the one the original would have given (networks built lazily
are rebuilt from the saved weights, optimiser moments included).

>>> import torch
>>> LeaveOneOut()(torch.tensor([1.0, 2.0, 3.0]))
tensor([2.5000, 2.0000, 1.5000])
"""

from __future__ import annotations

import torch
from torch import nn

from .core.loo import loo_mean
from .core.state import snapshot
from .errors import ArgumentError, SampleSizeError, StateError

__all__ = ["Baseline", "NoBaseline", "Constant", "MovingAverage", "LeaveOneOut", "Learned"]


class Baseline:
    """Base class: ``__call__`` gives b per sample, ``update`` learns from f after the estimate."""

    #: fewest independent blocks (units) the baseline needs.
    min_units: int = 1
    #: whether b for a sample is computed from the other samples of the same batch; estimators then
    #: fit anything else from the batch (control-variate coefficients) leave-one-out as well
    uses_batch: bool = False
    #: b ≡ 0, so estimators may skip it
    zero: bool = False
    #: whether it learns across calls (``scoregrad.core.state``: state_dict round-trips exactly)
    stateful: bool = False

    def __call__(
        self, f_values: torch.Tensor, block: int = 1, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        raise NotImplementedError

    def update(self, f_values: torch.Tensor, context: torch.Tensor | None = None) -> None:
        """Learn from this call's f values (no-op for stateless baselines)."""

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class NoBaseline(Baseline):
    """b = 0: the plain score-function (REINFORCE) estimator."""

    zero = True

    def __call__(self, f_values, block=1, context=None):
        return torch.zeros_like(f_values)


class Constant(Baseline):
    """b = c, a fixed number chosen by the user (e.g. a known approximate E[f]).

    >>> import torch
    >>> Constant(2.0)(torch.tensor([1.0, 5.0]))
    tensor([2., 2.])
    """

    def __init__(self, value: float):
        self.value = float(value)

    def __call__(self, f_values, block=1, context=None):
        return torch.full_like(f_values, self.value)

    def __repr__(self):
        return f"Constant({self.value})"


class MovingAverage(Baseline):
    """Bias-corrected exponential moving average of E[f] over earlier calls.

    m_t = β m_{t-1} + (1-β) mean(f_t);  b = m_t / (1 - β^t). The baseline used at call t only uses
    calls before t, so it is independent of the current samples. On the first call b = 0.
    The average is kept per trailing element (e.g. per time step when f has shape (n, T)).

    >>> import torch
    >>> ma = MovingAverage(decay=0.5)
    >>> ma(torch.tensor([4.0, 6.0]))
    tensor([0., 0.])
    >>> ma.update(torch.tensor([4.0, 6.0])); ma(torch.tensor([0.0]))
    tensor([5.])
    """

    stateful = True

    def __init__(self, decay: float = 0.9):
        if not 0.0 <= decay < 1.0:
            raise ArgumentError(
                f"MovingAverage decay must lie in [0, 1), got {decay!r}. Fix: use e.g. 0.9."
            )
        self.decay = float(decay)
        self.steps = 0
        self.average: torch.Tensor | None = None

    def current(self) -> torch.Tensor | None:
        if self.average is None:
            return None
        return self.average / (1.0 - self.decay**self.steps)

    def __call__(self, f_values, block=1, context=None):
        cur = self.current()
        if cur is None:
            return torch.zeros_like(f_values)
        return cur.to(f_values).expand_as(f_values).clone()

    def update(self, f_values, context=None):
        m = f_values.detach().mean(0)
        if self.average is None or self.average.shape != m.shape:
            self.average, self.steps = torch.zeros_like(m), 0
        self.average = self.decay * self.average + (1.0 - self.decay) * m
        self.steps += 1

    def state_dict(self):
        return {"decay": self.decay, "steps": self.steps, "average": self.average}

    def load_state_dict(self, state):
        self.decay, self.steps = float(state["decay"]), int(state["steps"])
        average = state["average"]
        self.average = None if average is None else average.detach().clone()

    def __repr__(self):
        return f"MovingAverage(decay={self.decay})"


class LeaveOneOut(Baseline):
    """b_i = mean of f over the samples outside sample i's block (RLOO, Kool et al. 2019).

    With n i.i.d. samples the estimator (1/n) Σ (f_i - b_i) ∇log p(x_i) equals
    1/(n-1) Σ (f_i - f̄) ∇log p(x_i): unbiased, and free of any extra evaluation of f.
    Works along axis 0 of f with any trailing shape (e.g. per time step for RL returns).
    """

    min_units = 2
    uses_batch = True

    def __call__(self, f_values, block=1, context=None):
        n = f_values.shape[0]
        units = n // block
        if units < 2:
            raise SampleSizeError(
                f"LeaveOneOut needs at least 2 independent samples (blocks of {block}), got n={n}. "
                "Fix: raise n (to at least 2 per block), or use MovingAverage()/NoBaseline()."
            )
        return loo_mean(f_values.detach(), block)


class Learned(Baseline):
    """NVIL's learned baseline: b = model(context), fitted to f by least squares after each call.

    ``model`` maps a context tensor (n, *c) to (n,) or (n, 1); without a model a small MLP is
    built lazily (two layers, tanh) on the first context it sees, and rebuilt from the saved
    weights by ``load_state_dict``. Without a context the baseline is a single learned number.
    The fit happens in ``update`` (after the estimate), so the b used for a sample never saw it.
    Reference: Mnih & Gregor 2014, "Neural Variational Inference and Learning in Belief Networks".

    >>> import torch
    >>> b = Learned(lr=0.5)
    >>> for _ in range(200): b.update(torch.full((8,), 3.0))
    >>> round(float(b(torch.zeros(2))[0]), 2)
    3.0
    """

    stateful = True

    def __init__(
        self,
        model: nn.Module | None = None,
        lr: float = 1e-2,
        steps_per_update: int = 1,
        hidden: int = 32,
    ):
        self.model = model
        self.hidden = hidden
        self.lr = lr
        self.steps_per_update = steps_per_update
        self._optimizer = None
        self.constant = nn.Parameter(torch.zeros(()))

    def _net(self, context):
        if context is None:
            return None
        if self.model is None:
            self.model = _default_net(context, self.hidden)
        return self.model

    def _predict(self, f_values, context):
        net = self._net(context)
        if net is None:
            return self.constant.to(f_values).expand(f_values.shape)
        out = net(context)
        if f_values.dim() > 1 and out.shape[0] != f_values.shape[0]:
            # one context per item (e.g. per data point, f of shape (n, B)): the same prediction
            # for every sample of that item
            return out.reshape(1, *f_values.shape[1:]).expand(f_values.shape)
        return out.reshape(out.shape[0], *f_values.shape[1:]) if out.dim() > 1 else out

    def __call__(self, f_values, block=1, context=None):
        with torch.no_grad():
            return (
                self._predict(f_values, context).detach().to(f_values).expand_as(f_values).clone()
            )

    def update(self, f_values, context=None):
        pred = self._predict(f_values, context)  # builds the lazy model if needed
        if self._optimizer is None:
            params = [self.constant] if self.model is None else list(self.model.parameters())
            self._optimizer = torch.optim.Adam(params, lr=self.lr)
        target = f_values.detach()
        for _ in range(self.steps_per_update):
            self._optimizer.zero_grad()
            loss = ((pred - target) ** 2).mean()
            loss.backward()
            self._optimizer.step()
            pred = self._predict(f_values, context)

    def state_dict(self):
        return snapshot(
            {
                "constant": self.constant,
                "model": None if self.model is None else self.model.state_dict(),
                "optimizer": None if self._optimizer is None else self._optimizer.state_dict(),
            }
        )

    def load_state_dict(self, state):
        with torch.no_grad():
            self.constant.copy_(state["constant"])
        saved = state["model"]
        if saved is not None and self.model is None:
            # the network was built lazily from a context: rebuild it from the saved weights
            self.model = _rebuild_default_net(saved)
        if saved is not None:
            self.model.load_state_dict(saved)
        # Adam's moments too, so training resumes exactly (when the model layout matches)
        if state.get("optimizer") is not None and (saved is None) == (self.model is None):
            params = [self.constant] if self.model is None else list(self.model.parameters())
            self._optimizer = torch.optim.Adam(params, lr=self.lr)
            self._optimizer.load_state_dict(state["optimizer"])

    def __repr__(self):
        return "Learned()"


def _default_net(context: torch.Tensor, hidden: int) -> nn.Sequential:
    """Learned's network for this context: flatten, lazy linear, tanh, linear to one value."""
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(hidden), nn.Tanh(), nn.Linear(hidden, 1)).to(
        device=context.device, dtype=context.dtype
    )


def _rebuild_default_net(saved: dict) -> nn.Sequential:
    """The default network with the shapes, dtype and device of saved weights."""
    if set(saved) != {"1.weight", "1.bias", "3.weight", "3.bias"}:
        raise StateError(
            "this state holds a user model (keys "
            f"{sorted(saved)[:4]}), but this Learned baseline has none. Fix: build it with the "
            "same model, Learned(model=...), before load_state_dict."
        )
    w = saved["1.weight"]
    hidden, kw = w.shape[0], {"dtype": w.dtype, "device": w.device}
    # skip_init: the weights are about to be overwritten, so draw nothing from torch's RNG
    return nn.Sequential(
        nn.Flatten(),
        nn.utils.skip_init(nn.Linear, w.shape[1], hidden, **kw),
        nn.Tanh(),
        nn.utils.skip_init(nn.Linear, hidden, 1, **kw),
    )
