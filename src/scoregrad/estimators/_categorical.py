"""Shared plumbing of the categorical estimators (ARSM, sum-and-sample, unordered set, ...).

* ``register_encoding(Family)`` declares a categorical family and how f sees its samples: a
  ``Categorical`` hands f category indices, a ``OneHotCategorical`` one-hot vectors. An estimator
  applies to exactly the registered families (``categorical_reason``), no isinstance chains.
* ``LogitEstimator`` is the base of estimators that form, per unit, a gradient with respect to the
  logits (n, *batch, K): both doors come from one ``_logit_grads`` (``estimate_grad`` pulls the
  gradient back to the user's parameters with ``NaturalParams``; ``expectation`` adds it as a
  zero-valued linear term), so the two cannot drift.
* ``gumbel``, ``conditional_gumbel`` and ``gumbel_top_k``: the Gumbel-max machinery
  (``argmax(θ + G)`` is a Categorical(softmax θ) draw; its top k are k draws without replacement,
  Kool, van Hoof & Welling 2019).
* ``replace_each`` builds the points where one categorical variable at a time takes other values
  with the rest held at a shared draw: the coordinate-wise form in which the sum-and-sample and
  unordered-set estimators apply to several independent variables with a joint f.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.distributions as D
import torch.nn.functional as F

from ..core.chunks import CHUNK_ELEMENTS
from ..core.model import SampleModel, refuse_moving_boundary_of
from ..errors import SampleSizeError
from ._common import NaturalParams, linear_term, not_applicable, unwrap
from .base import Contributions, Estimator

__all__ = [
    "register_encoding",
    "categorical_reason",
    "LogitEstimator",
    "gumbel",
    "conditional_gumbel",
    "gumbel_top_k",
    "replace_each",
]

#: family -> how f sees category indices (..., ) -> f's input, given K and the logits' dtype
_ENCODINGS: dict[type, Callable[[torch.Tensor, int, torch.dtype], torch.Tensor]] = {}


def register_encoding(family: type):
    """Declare a categorical ``family`` and the form f gets its samples in (like register_kl)."""

    def deco(fn):
        _ENCODINGS[family] = fn
        return fn

    return deco


@register_encoding(D.Categorical)
def _indices(idx, K, dtype):
    return idx


@register_encoding(D.OneHotCategorical)
def _one_hot(idx, K, dtype):
    return F.one_hot(idx, K).to(dtype)


def encoding_of(dist: D.Distribution):
    """The registered encoding of ``dist``'s family (under Independent wrappers), or None."""
    for cls in type(unwrap(dist)).__mro__:
        if cls in _ENCODINGS:
            return _ENCODINGS[cls]
    return None


def categorical_reason(dist: D.Distribution) -> str | None:
    """None for a registered categorical family, else why a categorical estimator cannot apply."""
    if encoding_of(dist) is not None:
        return None
    known = " or ".join(f.__name__ for f in _ENCODINGS)
    return f"it needs {known} random variables, got {type(unwrap(dist)).__name__}"


def gumbel(like: torch.Tensor) -> torch.Tensor:
    """Standard Gumbel noise shaped like ``like``."""
    u = torch.rand(like.shape, dtype=like.dtype, device=like.device)  # not rand_like: it keeps
    # the strides of an expanded tensor, which would repeat one draw along the sample axis
    tiny = torch.finfo(like.dtype).tiny
    return -torch.log((-torch.log(u.clamp_min(tiny))).clamp_min(tiny))


def conditional_gumbel(logits: torch.Tensor, b: torch.Tensor, E: torch.Tensor) -> torch.Tensor:
    """z ~ p(θ + G | argmax = b), reparameterised by E ~ Exp(1) of the logits' shape.

    z_b = logsumexp(θ) - log E_b,  z_i = -log(E_i e^{-θ_i} + E_b e^{-logsumexp θ}) for i ≠ b
    (Grathwohl et al. 2018, appendix B; Paulus et al. 2020). Differentiable in θ.
    """
    lse = torch.logsumexp(logits, -1, keepdim=True)
    Eb = E.gather(-1, b.unsqueeze(-1).expand(*E.shape[:-1], 1))  # E may carry leading draws
    top = lse - torch.log(Eb)
    rest = -torch.logaddexp(torch.log(E) - logits, torch.log(Eb) - lse)
    onehot = F.one_hot(b, logits.shape[-1]).bool()
    return torch.where(onehot, top, rest)


def gumbel_top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    """k categories drawn without replacement from Categorical(softmax θ), (..., k), in order."""
    return (logits + gumbel(logits)).topk(k, -1).indices


def replace_each(x: torch.Tensor, alts: torch.Tensor) -> torch.Tensor:
    """x (n, I, V) with variable j replaced by alts[:, :, j, a], for every j and a: (n, V, m, I, V).

    Row [i, j, a] holds draw i with its j-th variable (of every item) set to its a-th alternative.
    """
    n, items, V = x.shape
    m = alts.shape[-1]
    base = x[:, None, None, :, :].expand(n, V, m, items, V)
    repl = alts.permute(0, 2, 3, 1).unsqueeze(-1)  # (n, V_j, m, I, 1)
    eye = torch.eye(V, dtype=torch.bool, device=x.device)[None, :, None, None, :]
    return torch.where(eye, repl, base)


class LogitEstimator(Estimator):
    """Base of unbiased estimators built from per-unit gradients with respect to the logits.

    Subclasses implement ``_logit_grads(evaluator, logits, f_input, item_dims, keep_graph)`` →
    (values (n, *items), g (n, *batch, K)), where ``logits`` is (n, *batch, K) (detached) and
    ``f_input(idx)`` turns category indices (m, *batch) into f's input. ``values`` carries f's own
    graph when ``keep_graph`` (a VAE decoder's pathwise gradient). One row is one independent unit.
    """

    biased = False
    unit = "sample"
    samples_per_unit = 1

    def supports(self, dist: D.Distribution) -> str | None:
        """None when the estimator applies to ``dist``, else the reason it does not."""
        return categorical_reason(dist)

    def evals_per_unit(self, dist: D.Distribution) -> int:
        raise NotImplementedError

    def check(self, n: int) -> None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise SampleSizeError(
                f"{type(self).__name__} needs n ≥ 1 units ({self.unit} each), got n={n!r}."
            )

    def _require(self, dist: D.Distribution):
        why = self.supports(dist)
        if why is not None:
            raise not_applicable(type(self).__name__, dist, why)
        return encoding_of(dist)

    def _logit_grads(self, evaluator, logits, f_input, item_dims, keep_graph):
        raise NotImplementedError

    def contributions(self, evaluator, dist_fn, params, n, context=None) -> Contributions:
        self.check(n)
        model = SampleModel.expand(dist_fn, params, n)
        encode = self._require(model.dist)
        nat = NaturalParams(model, _logits, type(self).__name__)
        logits = nat.value[0]
        draw = model.draw_shape[1:]
        K = logits.shape[-1]

        def f_input(idx):
            return encode(idx, K, logits.dtype).reshape(idx.shape[0], *draw)

        values, g = self._logit_grads(evaluator, logits, f_input, 0, keep_graph=False)
        return Contributions(values=values, grads=nat.pullback((g,)), block=1)

    def surrogate(self, evaluator, dist, n, context=None):
        self.check(n)
        encode = self._require(dist)
        refuse_moving_boundary_of(dist, type(self).__name__)
        with torch.enable_grad():
            logits_t = unwrap(dist).logits
        logits = logits_t.detach().unsqueeze(0).expand(n, *logits_t.shape)
        draw = (*dist.batch_shape, *dist.event_shape)
        K = logits.shape[-1]

        def f_input(idx):
            return encode(idx, K, logits.dtype).reshape(idx.shape[0], *draw)

        item_dims = len(evaluator.item_shape)
        values, g = self._logit_grads(evaluator, logits, f_input, item_dims, keep_graph=True)
        surrogate = values.mean(0).sum() + linear_term((logits_t,), (g.mean(0),))
        return values.detach().mean(0).sum(), surrogate


def _logits(d: D.Distribution) -> tuple[torch.Tensor]:
    return (d.logits,)


def split_items(logits: torch.Tensor, item_dims: int) -> tuple[int, int]:
    """(I, V): items (f's trailing value axes) and categorical variables per item."""
    batch = logits.shape[1:-1]
    return math.prod(batch[:item_dims]), math.prod(batch[item_dims:])


def item_values(fx: torch.Tensor, n: int, lead: tuple[int, ...]) -> torch.Tensor:
    """f's values (n·prod(lead), *items) as (n, *lead, I)."""
    return fx.reshape(n, *lead, -1)


def n_categories(dist: D.Distribution) -> int:
    """K, the number of categories of each variable."""
    return unwrap(dist).logits.shape[-1]


def n_variables(dist: D.Distribution) -> int:
    """How many independent categorical variables one draw of ``dist`` holds."""
    return math.prod(unwrap(dist).batch_shape)


def coordinatewise(evaluator, logits, f_input, item_dims, keep_graph, choose):
    """Evaluate f with one variable at a time set to each of its alternatives.

    ``logits`` (n, *items, *vars, K); ``choose(L)`` maps logits (n, I, V, K) to alternatives
    (n, I, V, m). One shared draw x ~ p fixes the other variables. Returns (L, alternatives, f),
    with f of shape (n, I, V, m): f at x with variable j of every item set to alternative a.
    """
    n, K = logits.shape[0], logits.shape[-1]
    items, V = split_items(logits, item_dims)
    L = logits.reshape(n, items, V, K)
    with torch.no_grad():
        x = (L + gumbel(L)).argmax(-1)
        alts = choose(L)
    m = alts.shape[-1]
    # the points grow as V² per draw: build and evaluate them a block of draws at a time, so one
    # block holds at most CHUNK_ELEMENTS numbers (f's input counted with its one-hot axis)
    per_draw = V * m * math.prod(logits.shape[1:])
    step = max(1, CHUNK_ELEMENTS // per_draw)
    out = []
    for i in range(0, n, step):
        pts = replace_each(x[i : i + step], alts[i : i + step])
        pts = pts.reshape(pts.shape[0] * V * m, *logits.shape[1:-1])
        out.append(evaluator(f_input(pts), keep_graph=keep_graph))
    fx = out[0] if len(out) == 1 else torch.cat(out)
    return L, alts, fx.reshape(n, V, m, items).permute(0, 3, 1, 2)


def logit_gradient(signal: torch.Tensor, alts: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Σ_a signal_a ∇θ log p(alt_a) = Σ_a signal_a (e_{alt_a} - p), for logits θ (..., K)."""
    g = torch.zeros_like(p).scatter_add_(-1, alts, signal.to(p))
    return g - signal.sum(-1, keepdim=True).to(p) * p
