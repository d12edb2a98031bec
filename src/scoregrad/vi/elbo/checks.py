"""The log joint, called and checked (shape, NaN, infinities, support), and the guide's support
against the model's."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.distributions as D
from torch.distributions import constraints

from ..errors import LogJointError, SupportMismatchError
from ..guides import Guide


def _log_joint_fn(model) -> Callable:
    fn = getattr(model, "log_joint", model)
    if not callable(fn):
        raise TypeError(
            f"log_joint must be a callable z -> log p(x, z) or a model with a log_joint method, "
            f"got {type(model).__name__}."
        )
    return fn


def call_log_joint(model, z: torch.Tensor, item_shape: tuple[int, ...] = ()) -> torch.Tensor:
    """log p(x, z) for latents z (sample axis first), checked: shape (n, *item_shape), finite.

    Raises ``LogJointError`` for NaN, a wrong shape or a non-numeric result, and
    ``SupportMismatchError`` when the model rejects the guide's samples as outside its support.
    """
    fn = _log_joint_fn(model)
    n = z.shape[0]
    try:
        out = fn(z)
    except ValueError as e:
        if "support" in str(e).lower():
            raise SupportMismatchError(
                f"the log joint rejected the guide's samples as outside its support ({e}). Fix: "
                "choose a guide whose support matches the latent's (e.g. Beta for a probability, "
                "LogNormal/Gamma for a positive scale), or transform the guide's samples, e.g. "
                "TransformedDistribution(Normal(...), SigmoidTransform())."
            ) from e
        raise
    if not isinstance(out, torch.Tensor):
        try:
            out = torch.as_tensor(out, dtype=z.dtype if z.is_floating_point() else None)
        except (TypeError, ValueError, RuntimeError) as e:
            raise LogJointError(
                f"the log joint returned {type(out).__name__}, which is not numeric ({e}); it must "
                "return a tensor of log densities."
            ) from e
    want = (n, *item_shape)
    if tuple(out.shape) != want:
        per = "sample" if not item_shape else f"sample and data point {tuple(item_shape)}"
        hint = ""
        if out.numel() == math.prod(want):
            hint = " (it has the right number of values: reshape it, e.g. .squeeze(-1))"
        elif out.dim() > len(want) and tuple(out.shape[: len(want)]) == want:
            hint = " (sum the trailing axes: log densities of independent terms add)"
        raise LogJointError(
            f"the log joint returned shape {tuple(out.shape)} for latents of shape "
            f"{tuple(z.shape)}; it must return one log density per {per}, shape {want}{hint}. "
            "The sample axis of z is the first one."
        )
    if bool(torch.isfinite(out).all()):  # one check (one host sync) when all is well
        return out
    bad = torch.isnan(out)
    if bad.any():
        idx = bad.reshape(n, -1).any(1).nonzero().flatten()[:5].tolist()
        raise LogJointError(
            f"the log joint returned NaN for {int(bad.reshape(n, -1).any(1).sum())} of {n} "
            f"samples (first at sample indices {idx}). Fix the model so log p(x, z) is defined on "
            "the guide's whole support: guard log(0) and 0/0 (use log1p, logsigmoid, "
            "torch.xlogy, clamp), or use a guide whose support matches the model's."
        )
    if torch.isinf(out).any():
        pos = bool((out == float("inf")).any())
        raise LogJointError(
            "the log joint returned "
            + ("+inf (a density that is not normalisable there)" if pos else "-inf")
            + f" for some of the {n} samples: "
            + (
                "the guide proposes latents with zero model probability. Fix: match the guide's "
                "support to the model's (see scoregrad.vi.check_support), or keep the model's "
                "log density finite there."
                if not pos
                else "check the model's density."
            )
        )
    return out


def _unwrap(c: constraints.Constraint) -> constraints.Constraint:
    while isinstance(c, constraints.independent):
        c = c.base_constraint
    return c


def _contained(guide_c, model_c) -> bool:
    g, m = _unwrap(guide_c), _unwrap(model_c)
    if m is constraints.real or isinstance(m, type(constraints.real)):
        return True
    if type(g) is not type(m):
        # (0, 1) inside [0, 1], positive inside nonnegative, ...
        inner = {
            (type(constraints.unit_interval), type(constraints.interval(0.0, 1.0))),
            (type(constraints.positive), type(constraints.nonnegative)),
            (type(constraints.boolean), type(constraints.integer_interval(0, 1))),
        }
        return (type(g), type(m)) in inner
    for attr in ("lower_bound", "upper_bound"):
        if hasattr(m, attr):
            gv, mv = getattr(g, attr), getattr(m, attr)
            if not torch.equal(torch.as_tensor(gv), torch.as_tensor(mv)):
                return False
    return True


def check_support(model, q: D.Distribution | Guide, n: int = 16) -> None:
    """Raise ``SupportMismatchError`` if the guide's support is not inside the model's latent
    support (``model.support``, a ``torch.distributions.constraints`` object).

    >>> import torch.distributions as D
    >>> from torch.distributions import constraints
    >>> class M:  support = constraints.unit_interval
    >>> check_support(M(), D.Normal(0.5, 0.1))
    Traceback (most recent call last):
    ...
    scoregrad.vi.errors.SupportMismatchError: the guide Normal has support Real(), ...
    """
    support = getattr(model, "support", None)
    if support is None:
        return
    q = q() if isinstance(q, Guide) else q
    ok = _contained(q.support, support)
    if ok:
        with torch.no_grad():
            z = q.sample((n,))
        ok = bool(support.check(z).all())
    if not ok:
        name = type(q.base_dist if isinstance(q, D.Independent) else q).__name__
        raise SupportMismatchError(
            f"the guide {name} has support {_unwrap(q.support)}, but the model's latent lives "
            f"in {_unwrap(support)}."
            " Fix: choose a guide family on the same set (Beta for (0, 1), Gamma/LogNormal for "
            "(0, ∞), Bernoulli/Categorical for discrete latents), or push the guide through a "
            "transform, e.g. TransformedDistribution(Normal(...), SigmoidTransform())."
        )
