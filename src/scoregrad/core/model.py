"""A distribution prepared for n draws: sampling, per-sample log-probabilities and scores.

Two shapes of preparation:

* ``SampleModel.expand(dist_fn, params, n)`` rebuilds the distribution from parameters expanded
  over a leading sample axis (each row a view of the same values). One backward pass of
  Σ_i log p(x_i; θ_i) then yields every per-sample score ∇θ log p(x_i; θ) at once, because
  row i of the expanded parameter only touches sample i. When ``dist_fn`` cannot broadcast over a
  leading axis (say it multiplies a design matrix by a weight vector), we fall back to
  ``torch.func.vmap`` of ``torch.func.grad`` over the samples: still vectorised, never a loop.
* ``SampleModel.of(dist, n)`` wraps a ready distribution for the ``expectation`` door, drawing
  ``dist.sample((n,))``.

Uniform-to-sample maps (inverse CDFs) live in a registry keyed by family, like torch's
``register_kl``; antithetic and quasi-random sampling use it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping

import torch
import torch.distributions as D

from ..errors import EstimatorNotApplicable, ParameterError
from .shapes import stopped

_ICDF: dict[type, Callable[[D.Distribution, torch.Tensor], torch.Tensor]] = {}


def register_icdf(family: type):
    """Register u ↦ x, a map from U(0,1) draws of shape (..., *batch, *event) to samples of `family`."""

    def deco(fn):
        _ICDF[family] = fn
        return fn

    return deco


def _lookup_icdf(dist: D.Distribution):
    for cls in type(dist).__mro__:
        if cls in _ICDF:
            return _ICDF[cls]
    return None


def has_icdf(dist: D.Distribution) -> bool:
    """Whether an inverse CDF is registered for ``dist``'s family (looking through Independent)."""
    while isinstance(dist, D.Independent):
        dist = dist.base_dist
    return _lookup_icdf(dist) is not None


def from_uniform(dist: D.Distribution, u: torch.Tensor) -> torch.Tensor:
    """Map uniforms u, shaped like the draws (sample, batch and event dims), to samples of `dist`
    by its inverse CDF; raise if the family has none registered."""
    fn = _lookup_icdf(dist)
    if fn is None:
        supported = ", ".join(sorted(c.__name__ for c in _ICDF))
        raise EstimatorNotApplicable(
            f"{type(dist).__name__} has no inverse CDF registered, so it cannot be sampled "
            f"antithetically or quasi-randomly. Families that can: {supported}. Use the default "
            "i.i.d. sampler, or register one with scoregrad.sampling.register_icdf."
        )
    return fn(dist, u)


def _shape_u(dist: D.Distribution, u: torch.Tensor) -> torch.Tensor:
    ref = _parameter_of(dist)
    dtype = ref.dtype if ref is not None else torch.get_default_dtype()
    eps = torch.finfo(dtype).eps
    u = u.to(dtype=dtype, device=ref.device if ref is not None else u.device)
    return u.clamp(eps, 1.0 - eps)  # keep inverse CDFs finite after rounding


def _parameter_of(dist: D.Distribution) -> torch.Tensor | None:
    """A floating parameter tensor of `dist` (its dtype and device are the samples')."""
    for v in vars(dist).values():
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            return v
    base = getattr(dist, "base_dist", None)
    return _parameter_of(base) if base is not None else None


@register_icdf(D.Normal)
@register_icdf(D.Cauchy)
@register_icdf(D.Laplace)
@register_icdf(D.Uniform)
def _icdf_native(dist, u):
    return dist.icdf(_shape_u(dist, u))


@register_icdf(D.Exponential)
def _icdf_exponential(dist, u):
    return -torch.log1p(-_shape_u(dist, u)) / dist.rate


@register_icdf(D.Bernoulli)
def _icdf_bernoulli(dist, u):
    return (_shape_u(dist, u) > 1.0 - dist.probs).to(dist.probs.dtype)


@register_icdf(D.Categorical)
def _icdf_categorical(dist, u):
    uu = _shape_u(dist, u)
    cdf = dist.probs.cumsum(-1)
    cdf = cdf.expand(*uu.shape, cdf.shape[-1]).contiguous()
    idx = torch.searchsorted(cdf, uu.unsqueeze(-1).contiguous()).squeeze(-1)
    return idx.clamp_(max=dist.probs.shape[-1] - 1)


@register_icdf(D.MultivariateNormal)
def _icdf_mvn(dist, u):
    z = torch.special.ndtri(_shape_u(dist, u))
    return dist.loc + (dist.scale_tril @ z.unsqueeze(-1)).squeeze(-1)


@register_icdf(D.Independent)
def _icdf_independent(dist, u):
    return from_uniform(dist.base_dist, u)


def _scipy_icdf(ppf):
    def fn(dist, u):
        uu = _shape_u(dist, u)
        out = ppf(dist, uu.detach().cpu().double().numpy())
        return torch.as_tensor(out, dtype=uu.dtype, device=uu.device)

    return fn


def _gamma_ppf(dist, u):
    from scipy.special import gammaincinv

    a = dist.concentration.detach().cpu().double().numpy()
    return gammaincinv(a, u) / dist.rate.detach().cpu().double().numpy()


def _beta_ppf(dist, u):
    from scipy.special import betaincinv

    a = dist.concentration1.detach().cpu().double().numpy()
    b = dist.concentration0.detach().cpu().double().numpy()
    return betaincinv(a, b, u)


def _poisson_ppf(dist, u):
    from scipy.stats import poisson

    return poisson.ppf(u, dist.rate.detach().cpu().double().numpy())


register_icdf(D.Gamma)(_scipy_icdf(_gamma_ppf))
register_icdf(D.Beta)(_scipy_icdf(_beta_ppf))

#: largest Poisson rate inverted by summing the probabilities; above it SciPy's root finder
#: (its ``pdtrik`` costs ~2.5 µs a draw, the sum ~0.1 µs a draw and term at small rates)
POISSON_SUM_MAX_RATE = 64.0


@register_icdf(D.Poisson)
def _icdf_poisson(dist, u):
    """The least k with F(k) ≥ u, by the recurrence p(k) = p(k-1) λ/k summed in float64 (one
    vectorised step per k, at most λ + 12√λ + 30 steps); draws the sum leaves beyond it (a tail
    of probability ~1e-20, or rounding) and rates above ``POISSON_SUM_MAX_RATE`` go to SciPy."""
    uu = _shape_u(dist, u)
    lam = dist.rate.detach().expand(uu.shape)
    if uu.numel() == 0:
        return uu.clone()
    lam_max = float(lam.max())
    if not lam_max <= POISSON_SUM_MAX_RATE:  # (NaN rates too: SciPy's answer stands)
        return _scipy_icdf(_poisson_ppf)(dist, u)
    u64, lam64 = uu.to(torch.float64), lam.to(torch.float64)
    term = torch.exp(-lam64)
    cdf = term.clone()
    k = torch.zeros_like(u64)
    for j in range(1, math.ceil(lam_max + 12.0 * math.sqrt(lam_max) + 30.0) + 1):
        above = u64 > cdf  # F(j - 1) < u: the quantile is at least j
        if j % 8 == 1 and not bool(above.any()):  # (a host sync every eighth step)
            break
        k += above
        term = term * lam64 / j
        cdf = cdf + term
    left = u64 > cdf
    if bool(left.any()):
        k[left] = torch.as_tensor(
            _poisson_ppf(D.Poisson(lam64[left]), u64[left].cpu().numpy()),
            dtype=k.dtype, device=k.device,
        )  # fmt: skip
    return k.to(uu.dtype)


# --- exact samplers with fewer operations ------------------------------------------------------

_SAMPLERS: dict[type, Callable] = {}


def register_sampler(family: type):
    """Register (dist, shape) ↦ ``dist.sample(shape[:k])`` for `family`: the same numbers, bit
    for bit, in fewer operations, used for distributions whose parameters torch validated when
    they were built (the family's own ``sample`` may check them again per call: ``torch.normal``
    tests std ≥ 0 with a reduction and a host sync). ``shape`` is the full draw shape, sample
    then batch then event dimensions."""

    def deco(fn):
        _SAMPLERS[family] = fn
        return fn

    return deco


@register_sampler(D.Normal)
def _normal_sample(d, shape):
    # torch.normal(loc, scale) fills its output with N(0, 1) draws (the generator's stream, as
    # randn), then multiplies by scale and adds loc, in that order (ATen's normal_out_impl)
    return torch.randn(shape, dtype=d.loc.dtype, device=d.loc.device).mul_(d.scale).add_(d.loc)


# --- closed-form scores with respect to a family's own parameters -----------------------------

_SCORES: dict[type, Callable] = {}
_AS_GIVEN: dict[type, frozenset[str]] = {}


def register_score(family: type, as_given: tuple[str, ...] = ()):
    """Register x ↦ [(parameter tensor, ∂ log p(x)/∂ parameter), ...] for `family` (elementwise,
    shaped like each parameter tensor). Used by ``SampleModel.score`` to skip the backward pass
    through ``log_prob``; families without one use autograd on ``log_prob``. ``as_given`` names
    the constructor arguments that the family stores as passed (up to broadcasting), so a score
    with respect to its attribute is one with respect to the argument (not Categorical's logits,
    which it normalises); ``Family`` needs that to skip autograd altogether."""

    def deco(fn):
        _SCORES[family] = fn
        _AS_GIVEN[family] = frozenset(as_given)
        return fn

    return deco


def scored_as_given(family: type) -> frozenset[str]:
    """The arguments of ``family`` whose closed-form score is the score of the argument itself."""
    return _AS_GIVEN.get(family, frozenset())


def _natural_scores(dist: D.Distribution, x: torch.Tensor):
    fn = _SCORES.get(type(dist))  # exact type: a subclass may change log_prob
    return None if fn is None else fn(dist, x)


@register_score(D.Normal, as_given=("loc", "scale"))
def _normal_score(d, x):
    z = (x - d.loc) / d.scale
    return [(d.loc, stopped(z / d.scale)), (d.scale, stopped((z * z - 1.0) / d.scale))]


@register_score(D.Bernoulli, as_given=("logits", "probs"))
def _bernoulli_score(d, x):
    if d._param is d.__dict__.get("logits"):
        return [(d.logits, stopped(x - torch.sigmoid(d.logits)))]
    p = d.probs
    # x / p - (1 - x) / (1 - p) with no 0/0 at a certain outcome (p = 0 or 1: a mask, a saturated
    # sigmoid): only the outcome drawn contributes (a p at 0 or 1 that moves is refused instead,
    # ``SampleModel.refuse_moving_boundary``)
    return [(p, stopped(torch.where(x > 0.5, 1.0 / p, -1.0 / (1.0 - p))))]


@register_score(D.Categorical)
def _categorical_score(d, x):
    onehot = torch.nn.functional.one_hot(x.long(), d._num_events).to(d._param.dtype)
    if d._param is d.__dict__.get("logits"):  # normalised logits: log p(x) = logits[x]
        return [(d.logits, onehot)]
    # onehot / probs with no 0/0 at a zero-probability (masked) category, which is never drawn
    return [(d.probs, stopped(torch.where(onehot > 0, 1.0 / d.probs, 0.0)))]


@register_score(D.Poisson, as_given=("rate",))
def _poisson_score(d, x):
    return [(d.rate, stopped(x / d.rate - 1.0))]


@register_score(D.Exponential, as_given=("rate",))
def _exponential_score(d, x):
    return [(d.rate, stopped(1.0 / d.rate - x))]


@register_score(D.Gamma, as_given=("concentration", "rate"))
def _gamma_score(d, x):
    a, b = d.concentration, d.rate
    return [
        (a, stopped(torch.log(b) + torch.log(x) - torch.digamma(a))),
        (b, stopped(a / b - x)),
    ]


def _pull_to_leaves(natural, leaves: list[torch.Tensor]) -> list[torch.Tensor | None]:
    """Per-sample gradients w.r.t. the expanded ``leaves`` from (tensor of the distribution, its
    score) pairs: one backward pass through dist_fn, except that a tensor which *is* a leaf (a
    parameter passed straight through, Normal(mu, ...)) takes its score as it is (autograd
    would return that cotangent unchanged, at the cost of a backward call per output)."""
    direct: dict[int, torch.Tensor] = {}
    outputs, cotangents = [], []
    for t, g in natural:
        if not t.requires_grad:
            continue
        i = next((i for i, leaf in enumerate(leaves) if leaf is t), None)
        if i is None:
            outputs.append(t)
            cotangents.append(g)
        else:
            direct[i] = g if i not in direct else direct[i] + g
    grads = (
        list(torch.autograd.grad(outputs, leaves, cotangents, allow_unused=True))
        if outputs
        else [None] * len(leaves)
    )
    for i, g in direct.items():
        grads[i] = g if grads[i] is None else grads[i] + g
    return grads


def sum_trailing(t: torch.Tensor, keep: int = 1) -> torch.Tensor:
    """Sum over all dimensions after the first ``keep`` (sample axis, then any item axes)."""
    return t.reshape(*t.shape[:keep], -1).sum(-1) if t.dim() > keep else t


#: families whose declared arguments have no ``probs`` (looked up by exact type: the check below
#: then costs one dict lookup on the hot path of a Normal)
_NO_PROBS: set[type] = set()


def _given_probs(dist: D.Distribution) -> list[D.Distribution]:
    """The distributions in ``dist`` (through Independent and the ones it holds) that were given
    ``probs`` (torch derives their logits as log(clamp(p, eps, 1 - eps)))."""
    if type(dist) in _NO_PROBS:
        return []
    while isinstance(dist, D.Independent):
        dist = dist.base_dist
    declared = getattr(dist, "arg_constraints", None)
    if isinstance(declared, dict) and "probs" not in declared:
        if isinstance(type(dist).__dict__.get("arg_constraints"), dict):  # a class-level fact
            _NO_PROBS.add(type(dist))
        return []
    param = dist.__dict__.get("_param")  # the argument torch was given (Bernoulli, Categorical)
    if param is not None:
        return [dist] if param is dist.__dict__.get("probs") else []
    inner = [v for v in vars(dist).values() if isinstance(v, D.Distribution)]  # (OneHot...)
    return [d for d in inner
            if "probs" in d.__dict__ and d.__dict__.get("_param") is d.__dict__["probs"]]  # fmt: skip


def moving_boundary(dist_fn, params: Mapping[str, torch.Tensor]) -> str | None:
    """Why an estimate through scores or logits cannot be right here: a probability given as
    exactly 0 or 1 that moves with the parameters (its derivative in them is not 0), where the
    outcome entering the support is never drawn, so its value of f is never seen (the score
    identity E[∇ log p] = 0 fails there, and torch's clamped logits have derivative 0). None when
    no such probability (a fixed mask, a saturated sigmoid, a family given logits)."""
    leaves = {k: p.detach().requires_grad_() for k, p in params.items()}
    with torch.enable_grad():
        built = [d.probs for d in _given_probs(dist_fn(**leaves)) if d.probs.requires_grad]
    if built and _boundary_moves(built, list(leaves.values())):
        return _MOVING_BOUNDARY
    return None


def _graph_leaves(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """The leaf tensors (those that require grad and accumulate it) the graphs of ``tensors``
    start from, found by walking their ``grad_fn`` nodes."""
    leaves, seen, todo = {}, set(), []
    for t in tensors:
        if t.grad_fn is None:
            leaves[id(t)] = t
        else:
            todo.append(t.grad_fn)
    while todo:
        node = todo.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        variable = getattr(node, "variable", None)  # an AccumulateGrad node: a leaf
        if variable is not None:
            leaves[id(variable)] = variable
        todo += [nxt for nxt, _ in node.next_functions]
    return list(leaves.values())


def _at_edge(probs: list[torch.Tensor]) -> bool:
    """Whether any of ``probs`` is exactly 0 or 1 (one host sync per tensor; none for [])."""
    return any(bool(((p == 0) | (p == 1)).any()) for p in probs)


def _boundary_moves(probs: list[torch.Tensor], inputs: list[torch.Tensor]) -> bool:
    """Whether the entries of ``probs`` at exactly 0 or 1 have a non-zero derivative in
    ``inputs`` (the callers' graphs are kept)."""
    edges = [((p == 0) | (p == 1)).to(p.dtype) for p in probs]
    with torch.enable_grad():
        total = sum((p * e).sum() for p, e in zip(probs, edges, strict=True))
        moved = torch.autograd.grad(total, inputs, allow_unused=True, retain_graph=True)
    return any(g is not None and bool((g != 0).any()) for g in moved)


def refuse_moving_boundary_of(dist: D.Distribution, estimator: str) -> None:
    """``moving_boundary``'s refusal for a ready distribution (the ``expectation`` door): the
    moving is judged through the caller's own graph, from the leaves it starts from. No cost
    for families given logits, one host sync for those given probabilities."""
    probs = [d.probs for d in _given_probs(dist) if d.probs.requires_grad]
    if _at_edge(probs) and _boundary_moves(probs, _graph_leaves(probs)):
        raise EstimatorNotApplicable(f"{estimator} cannot be used here: {_MOVING_BOUNDARY}.")


#: why an estimate through scores or logits cannot be right at a moving probability of 0 or 1
_MOVING_BOUNDARY = (
    "a probability of exactly 0 or 1 moves with the parameters: the outcome it lets into the "
    "support is never drawn, so f's value there is never seen and the gradient in that direction "
    "would be silently lost (measure_valued evaluates f at every outcome; or keep the "
    "probabilities off 0 and 1, or parametrise by logits; a fixed mask is fine)"
)


class SampleModel:
    """A distribution set up to draw n samples and score them per sample (see module docstring)."""

    def __init__(self, dist, n, *, expanded, leaves=None, dist_fn=None, params=None):
        # torch checked its parameter values when it was built (read before skip_sample_checks),
        # or the caller checks them when the estimate fails (``Family.checked_by_outcome``)
        self.validated = bool(
            getattr(dist, "_validate_args", False) or getattr(dist, "checked_by_outcome", False)
        )
        self.dist = dist
        self.n = n
        self.expanded = expanded  # batch axis 0 of `dist` is the sample axis
        self.leaves = leaves  # expanded parameter leaves, when expanded
        self.dist_fn = dist_fn
        self.params = params
        self._boundary_checked = False

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def expand(cls, dist_fn, params: Mapping[str, torch.Tensor], n: int, expandable=None,
               through_samples: bool = False):  # fmt: skip
        """The model for n draws of dist_fn(**params), parameters expanded over the sample axis.

        A ``dist_fn`` that declares the chain rule (``Family``) is scored without expanding,
        unless ``through_samples``: per-sample gradients that flow through reparameterised
        samples (pathwise) need the expanded parameters whatever the scores need.

        ``expandable`` is what an earlier call with the same shapes found (a prepared estimate
        remembers it): True builds only the expanded distribution, False only the plain one,
        None tries the expanded one first. Parameter values are validated once, by torch's own
        checks when dist_fn builds the distribution (as the user has them set; never switched
        off for the process); only the checks of our own samples in ``log_prob`` are skipped, on
        the objects built here (``skip_sample_checks``).
        """
        if expandable is None:  # a prepared dist_fn remembers what its first call found
            expandable = getattr(dist_fn, "expandable", None)
        declared = getattr(dist_fn, "declares_chain_rule", None)
        if declared is not None and not through_samples and declared(params):
            expandable = False  # it declares the chain rule: scores need no expanded model
        leaves = None
        if expandable is not False:
            leaves = {
                k: p.detach().unsqueeze(0).expand(n, *p.shape).requires_grad_()
                for k, p in params.items()
            }
            try:
                dist = dist_fn(**leaves)
                ok = isinstance(dist, D.Distribution) and tuple(dist.batch_shape[:1]) == (n,)
            except (ValueError, RuntimeError, IndexError, TypeError):
                # no broadcasting over a leading sample axis, or values torch rejects: the plain
                # build below tells them apart (a ParameterError for the values)
                ok = False
            if ok:
                if hasattr(dist_fn, "expandable"):
                    dist_fn.expandable = True
                model = cls(dist, n, expanded=True, leaves=leaves, dist_fn=dist_fn, params=params)
                skip_sample_checks(dist)
                return model
        base = build_distribution(dist_fn, {k: p.detach() for k, p in params.items()})
        if expandable is None and hasattr(dist_fn, "expandable"):
            dist_fn.expandable = False  # valid values, so it was the broadcasting that failed
        model = cls(base, n, expanded=False, dist_fn=dist_fn, params=params)
        skip_sample_checks(base)
        return model

    @classmethod
    def of(cls, dist: D.Distribution, n: int) -> SampleModel:
        """The model of a ready distribution (the ``expectation`` door): it scores only the samples
        it draws, so torch's sample check is skipped on a copy (``unchecked``), never on the
        caller's object."""
        model = cls(unchecked(dist), n, expanded=False)
        model.validated = False  # the caller's object: not known to be checked as it is now
        return model

    # -- sampling -----------------------------------------------------------------------------
    @property
    def sample_shape(self) -> tuple[int, ...]:
        return () if self.expanded else (self.n,)

    @property
    def draw_shape(self) -> tuple[int, ...]:
        """Shape of the n draws together: (n, *batch, *event) with the sample axis first."""
        return (
            tuple(self.sample_shape) + tuple(self.dist.batch_shape) + tuple(self.dist.event_shape)
        )

    @property
    def uniform_dim(self) -> int:
        """How many U(0,1) numbers one draw consumes (its batch and event elements)."""
        return max(1, math.prod(self.draw_shape[1:]))

    def sample(self) -> torch.Tensor:
        fast = _SAMPLERS.get(type(self.dist)) if self.validated else None  # exact type
        with torch.no_grad():
            if fast is not None:
                return fast(self.dist, self.draw_shape)
            return self.dist.sample(self.sample_shape)

    def rsample(self) -> torch.Tensor:
        return self.dist.rsample(self.sample_shape)

    def from_uniform(self, u: torch.Tensor) -> torch.Tensor:
        """Samples from uniforms u of shape (n, uniform_dim), by the family's inverse CDF."""
        with torch.no_grad():
            return from_uniform(self.dist, u.reshape(self.draw_shape))

    # -- densities ----------------------------------------------------------------------------
    def log_prob(self, x: torch.Tensor, item_dims: int = 0) -> torch.Tensor:
        """log p(x_i), shape (n,), summed over the batch and event dimensions of one draw; with
        ``item_dims`` = k the first k batch dimensions are kept, shape (n, *items)."""
        return sum_trailing(self.dist.log_prob(x), keep=1 + item_dims)

    def refuse_moving_boundary(self, estimator: str) -> None:
        """``moving_boundary``'s refusal, checked once per model and only for families given
        probabilities that sit at 0 or 1 (one host sync for those; none for logits)."""
        if self._boundary_checked:
            return
        self._boundary_checked = True
        if self.dist_fn is None:  # a ready distribution (the expectation door)
            refuse_moving_boundary_of(self.dist, estimator)
            return
        if not _at_edge([d.probs for d in _given_probs(self.dist)]):
            return
        why = moving_boundary(self.dist_fn, self.params)
        if why is not None:
            raise EstimatorNotApplicable(f"{estimator} cannot be used here: {why}.")

    def score(
        self, x: torch.Tensor, create_graph: bool = False, check_support: bool = False
    ) -> dict[str, torch.Tensor]:
        """Per-sample scores {name: (n, *param.shape)} with one backward pass (or one vmap).

        With ``check_support`` points outside the support raise ``SupportError`` (naming them)
        instead of getting a formula's value; samples the model drew itself need no check.

        For families with a registered closed-form score (``register_score``) the backward pass
        runs only through ``dist_fn`` (from the family's own parameters to the user's), not
        through ``log_prob``: a few autograd nodes instead of a dozen, which is most of the fixed
        cost of a small-n estimate.
        """
        if check_support:
            from .support import check_in_support

            check_in_support(self.dist, x)
        self.refuse_moving_boundary("the score function")
        if self.expanded:
            natural = None if create_graph else _natural_scores(self.dist, x)
            leaves = list(self.leaves.values())
            if natural is not None:
                grads = _pull_to_leaves(natural, leaves)
            else:
                lp = self.log_prob(x)
                grads = torch.autograd.grad(
                    lp.sum(), leaves, allow_unused=True, create_graph=create_graph
                )
            return {
                k: (g if g is not None else torch.zeros_like(v))
                for (k, v), g in zip(self.leaves.items(), grads)
            }
        if self.dist_fn is None:
            raise RuntimeError("score() needs a model built with SampleModel.expand")
        if not create_graph:
            natural = _natural_scores(self.dist, x)
            if natural is not None:
                grads = self.pullback(natural)
                if grads is not None:
                    return grads
        return vmap_score(self.dist_fn, self.params, x)

    def pullback(self, pairs) -> dict[str, torch.Tensor] | None:
        """Per-sample gradients w.r.t. the user's parameters from per-sample gradients w.r.t. the
        distribution's own tensors, by the chain rule its ``dist_fn`` declares (``Family``);
        None when it declares none (or it does not apply)."""
        declared = getattr(self.dist_fn, "pullback", None)
        if declared is None or self.expanded:
            return None
        return declared(self.dist, pairs, self.params, self.n)


def build_distribution(dist_fn, params: Mapping[str, torch.Tensor]) -> D.Distribution:
    """dist_fn(**params), turning a rejected parameter value into a ParameterError with a fix."""
    try:
        dist = dist_fn(**params)
    except ValueError as e:
        raise ParameterError(
            f"dist_fn(**params) rejected the parameter values: {e}. Fix: keep each parameter inside "
            "its family's support, or pass unconstrained parameters and map them in dist_fn "
            "(e.g. Normal(mu, log_sigma.exp()), Bernoulli(logits=theta))."
        ) from e
    if not isinstance(dist, D.Distribution):
        raise ParameterError(
            f"dist_fn must return a torch.distributions.Distribution, got {type(dist).__name__}."
        )
    return dist


def skip_sample_checks(dist: D.Distribution) -> D.Distribution:
    """Switch off torch's sample validation in ``log_prob`` on ``dist`` and the distributions it
    wraps, per object (an instance attribute; the class default, which is process-wide, is never
    touched). Used where the points are the model's own samples, or where the data-dependent
    check cannot run (under vmap); the parameter values were validated when it was built."""
    todo, seen = [dist], set()
    while todo:
        d = todo.pop()
        if id(d) in seen:
            continue
        seen.add(id(d))
        d._validate_args = False
        todo += [v for v in vars(d).values() if isinstance(v, D.Distribution)]
    return dist


def unchecked(dist: D.Distribution) -> D.Distribution:
    """A shallow copy of ``dist`` (and of the distributions it wraps) whose ``log_prob`` skips
    torch's sample check; tensors, and so their graphs, are shared, and the caller's object is
    untouched. For scoring samples drawn from ``dist`` itself."""
    new = copy.copy(dist)
    for k, v in list(vars(new).items()):
        if isinstance(v, D.Distribution):
            setattr(new, k, unchecked(v))
    new._validate_args = False
    return new


def vmap_score(dist_fn, params: Mapping[str, torch.Tensor], x: torch.Tensor):
    """Per-sample scores by torch.func.vmap(torch.func.grad(log p)) over the sample axis."""
    from torch.func import grad, vmap

    p0 = {k: p.detach() for k, p in params.items()}

    build_distribution(dist_fn, p0)  # the values, validated once outside vmap

    def logp(p, xi):
        # the parameters are not batched, so torch's parameter checks run (and pass); the check
        # of the batched point would be data-dependent control flow, so it is skipped per object
        return skip_sample_checks(dist_fn(**p)).log_prob(xi).sum()

    return vmap(grad(logp), in_dims=(None, 0))(p0, x)
