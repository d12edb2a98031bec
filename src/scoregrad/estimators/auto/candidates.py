"""Which estimators are Auto's candidates (from their declarations alone), whether f is
differentiable (a probe), and the small lookups the pilot needs."""

from __future__ import annotations

import torch

from ...errors import ScoregradError


def unfit(est, dist, door, differentiable, executor, allow_biased) -> str | None:
    """Why ``est`` is not a candidate, from its declarations alone (None: it is)."""
    if est.estimates != "E[f]":
        return f"it estimates {est.estimates}, not ∇E[f]"
    if est.stateful:
        return "it learns across calls, which a short pilot cannot judge"
    if est.biased and not allow_biased:
        return "biased (Auto(allow_biased=True) admits it)"
    if door is not None and door not in est.doors:
        return f"it does not run through {door}"
    why = est.supports(dist)  # the distribution first: it is the reason when both fail
    if why is not None:
        return why
    if est.needs_differentiable_f and executor is not None:
        return "it differentiates f, which runs on an executor"
    if est.needs_differentiable_f and not differentiable:
        return "it differentiates f, which is not differentiable torch code (differentiable=True if it is)"
    return None


def by_label(pool, label):
    for est in pool:
        if repr(est) == label:
            return est
    raise ScoregradError(f"Auto's saved choice {label} is not among its candidates now.")


def context_rows(context, units: int):
    """A per-sample context cut (or cycled) to ``units`` rows; a shared row as it is."""
    if context is None or context.dim() == 0 or context.shape[0] == 1:
        return context
    return context[torch.arange(units, device=context.device) % context.shape[0]]


def dist_tensors(dist) -> list[torch.Tensor]:
    """Floating tensors ``dist`` holds that require grad (each once)."""
    out, seen = [], set()

    def walk(obj):
        if id(obj) in seen or not hasattr(obj, "__dict__"):
            return
        seen.add(id(obj))
        for v in vars(obj).values():
            for item in v if isinstance(v, list | tuple) else (v,):
                if isinstance(item, torch.Tensor):
                    if item.requires_grad and item.is_floating_point() and id(item) not in seen:
                        seen.add(id(item))
                        out.append(item)
                elif isinstance(item, torch.distributions.Distribution):
                    walk(item)

    walk(dist)
    return out


def probe_differentiable(evaluator, dist) -> bool:
    """Evaluate f on two reparameterised samples with grad: does its output require grad?"""
    if not dist.has_rsample:
        return False
    with torch.no_grad():
        x = dist.rsample((2,))
    x = x.detach().requires_grad_()
    try:
        with torch.enable_grad():
            out = evaluator.f(x)
    except Exception:  # noqa: BLE001  f that cannot take a tensor with grad is not differentiable
        return False
    finally:
        evaluator.n_evals += 2
    return isinstance(out, torch.Tensor) and out.requires_grad


#: (dtype, device) pairs whose one-time costs this process has paid (a memo: what it records is
#: true of the process, and nothing reads it but ``warm_up``)
_WARM: set = set()


def warm_up(dtype, device) -> None:
    """Pay the process's one-time costs before anything is timed: torch's first
    ``autograd.grad`` with explicit output gradients imports modules (sympy, through torch.fx:
    about 0.5 s), which a timed screen would charge to whichever candidate runs first (the
    score function's draw) in a fresh process. Once per dtype and device."""
    key = (dtype, str(device))
    if key in _WARM:
        return
    _WARM.add(key)
    x = torch.zeros(1, dtype=dtype, device=device, requires_grad=True)
    with torch.enable_grad():
        y = 2.0 * x
        torch.autograd.grad(y, x, torch.ones_like(y))
