"""``estimate_greeks``: check the request, plan the chunks, run one method over them, and stream
the per-unit contributions into running moments (memory constant in n)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import numpy as np
import torch

from ...core import CHUNK_ELEMENTS, RunningMoments, chunk_sizes, seeded, unit_means
from ...errors import EstimatorNotApplicable, ParameterError, SampleSizeError
from ...sampling import IID, QMC, Antithetic, Sampler
from ..models import Model
from ..parameters import check_dtype
from ..payoffs import as_payoff
from . import basis
from .control import loo_regress, resolve_control_variate
from .lr import chunk_lr
from .mixed import chunk_mixed
from .names import DEFAULT_GREEKS, GREEK_NAMES, METHODS
from .pathwise import chunk_pathwise, pathwise_problem
from .result import GreeksResult
from .simulation import Simulation

__all__ = ["estimate_greeks"]

#: per-path chunk steps of each method: {quantity: (c, *B_tot)}, block, controls
STEPS = {"lr": chunk_lr, "pathwise": chunk_pathwise, "mixed": chunk_mixed}
#: paths per chunk of the closed-form one-date kernel: its rows stay in cache
BASIS_CHUNK = 2**17


def _sampler_of(sampler, replicates) -> Sampler:
    if isinstance(sampler, Sampler):
        return sampler
    if sampler in (None, "iid"):
        return IID()
    if sampler == "antithetic":
        return Antithetic()
    if sampler == "qmc":
        if not isinstance(replicates, int) or replicates < 2:
            raise SampleSizeError(
                f"QMC needs at least 2 replicates (its standard error comes from their spread), "
                f"got replicates={replicates!r}. Fix: e.g. replicates=16."
            )
        return QMC(replicates=replicates)
    raise ParameterError(f"sampler must be 'iid', 'antithetic' or 'qmc', got {sampler!r}.")


def estimate_greeks(
    model: Model,
    payoff,
    n: int,
    *,
    method: str = "lr",
    greeks: Sequence[str] = DEFAULT_GREEKS,
    sampler="iid",
    replicates: int = 16,
    control_variate=None,
    baseline: bool = True,
    chunk_size: int | None = None,
    seed: int | None = None,
    dtype: torch.dtype = torch.float64,
    device=None,
    engine: str = "auto",
    rng: str = "auto",
) -> GreeksResult:
    """Monte Carlo price and Greeks of ``payoff`` under ``model``, each with a standard error.

    Args:
        model: ``GBM``, ``Heston`` or ``Merton`` (parameters may be tensors: a batch of options).
        payoff: a ``Payoff`` (strike tensors give a batch priced on the same paths) or a callable
            of the price path (LR only unless wrapped in ``Custom`` with a ``pathwise_order``).
        n: number of paths.
        method: 'lr' (likelihood ratio), 'pathwise' or 'mixed'.
        greeks: any of delta, gamma, vega, rho, theta (= -∂P/∂T), vanna, volga.
        sampler: 'iid', 'antithetic', 'qmc' (randomised Sobol, ``replicates`` scrambles; use
            ``bridge=True`` in the model for path-dependent payoffs), or a core sampler object.
        control_variate: None, 'terminal' (S_T), 'geometric' (geometric Asian, for arithmetic
            Asians under GBM) or a ``PathControlVariate``; LR only.
        baseline: leave-one-out baseline for LR (ignored with a control variate, which includes an
            optimal baseline).
        chunk_size: paths per chunk (default keeps each chunk's arrays ~2²² elements); memory
            is constant in n.
        seed: reproducible draws without changing the caller's RNG state.
        engine: 'auto' (closed-form GBM weights when possible), 'analytic' or 'autograd'.
        rng: 'auto' (NumPy's SFC64 normals for float64 on the CPU, twice as fast as torch's;
            torch otherwise), 'torch' or 'numpy'. Both are seeded by ``seed``.
    """
    start = time.perf_counter()
    if method not in METHODS:
        raise ParameterError(
            f"method must be one of {METHODS} (or 'all' in the CLI), got {method!r}."
        )
    bad = [g for g in greeks if g not in GREEK_NAMES]
    if bad:
        raise ParameterError(f"unknown Greek(s) {bad}; choose from {GREEK_NAMES}.")
    if not isinstance(n, int) or n < 2:
        raise SampleSizeError(f"n must be an integer number of paths >= 2, got {n!r}.")
    if not isinstance(model, Model):
        raise ParameterError(
            f"model must be a scoregrad.finance model (GBM, Heston, Merton), got {model!r}."
        )
    check_dtype(dtype)
    payoff = as_payoff(payoff)
    smp = _sampler_of(sampler, replicates)
    smp.check_n(n)
    gran = smp.granularity
    cv = resolve_control_variate(control_variate, payoff, model)
    if cv is not None and method != "lr":
        raise EstimatorNotApplicable(
            "control variates are applied to the likelihood-ratio weights; use method='lr', or "
            "antithetic/QMC sampling with the pathwise and mixed methods."
        )
    if cv is not None and isinstance(smp, QMC) and smp.replicates < 4:
        raise SampleSizeError("a control variate with QMC needs at least 4 replicates.")
    if method == "pathwise":
        for g in greeks:
            msg = pathwise_problem(model, payoff, g)
            if msg:
                raise EstimatorNotApplicable(msg)
    device = torch.device(device) if device is not None else None
    sim = Simulation(model, payoff, method, greeks, smp, cv, baseline, dtype, device, engine)
    kernel = basis.applies(sim)
    # numbers one path holds: the closed-form kernel's basis rows, or ~12 per-path tensors
    per_path = 1 if kernel else sim.dist0.event_shape.numel()
    per = max(1, math.prod(sim.B_tot)) * per_path * (2 if kernel else 12)
    if chunk_size is None and kernel:
        chunk_size = min(BASIS_CHUNK, max(1, CHUNK_ELEMENTS // per))
    if chunk_size is not None:
        chunk_size = max(gran, chunk_size // gran * gran)
    # >= 3 units per chunk: leave-one-out baselines and coefficients fit on the other units
    sizes = chunk_sizes(n, per, gran, chunk_size, device, min_units=3)
    if cv is not None and any(s // gran < 3 for s in sizes):
        raise SampleSizeError(
            "leave-one-out control-variate coefficients need at least 3 independent units per "
            "chunk; raise n or chunk_size (units are paths, pairs or QMC replicates)."
        )
    stats = RunningMoments()
    with seeded(seed, device):
        use_np = sim.iid_normals and (
            rng == "numpy"
            or (
                rng == "auto"
                and dtype == torch.float64
                and (device is None or device.type == "cpu")
            )
        )
        if use_np:
            sim.np_gen = np.random.Generator(np.random.SFC64(int(torch.randint(0, 2**62, ()))))
        if kernel:
            with torch.no_grad():
                k = basis.BasisKernel(sim, sizes)
                for c in sizes:
                    stats.merge(*k.chunk(c))
        else:
            _run_steps(sim, STEPS[method], sizes, stats)
    mean, se = stats.mean.to(dtype), stats.stderr().to(dtype)
    means, ses = mean.unbind(-1), se.unbind(-1)
    return GreeksResult(
        price=means[0],
        price_se=ses[0],
        greeks=dict(zip(greeks, means[1:], strict=True)),
        stderr=dict(zip(greeks, ses[1:], strict=True)),
        method=method,
        n=n,
        n_units=stats.count,
        seconds=time.perf_counter() - start,
        sampler=repr(smp),
        control_variate=None if cv is None else cv.name,
        info={
            "engine": "analytic" if sim.analytic else "autograd",
            "kernel": "basis" if kernel else "per-path",
            "chunks": len(sizes),
            "chunk_size": max(sizes),
        },
    )


def _run_steps(sim, step, sizes, stats) -> None:
    """Per-path contributions chunk by chunk, regressed on the controls (if any) leave-one-out,
    averaged over each unit, stacked as (units, *B_tot, quantities) into ``stats``."""
    names = ["price", *sim.names]
    grad = torch.no_grad() if (sim.analytic and sim.method == "lr") else torch.enable_grad()
    with grad:
        for c in sizes:
            out, block, ctrl = step(sim, c)
            cols = []
            for k in names:
                v = out[k].expand(c, *sim.B_tot)
                if ctrl is not None:
                    v = loo_regress(v, ctrl[k], block)
                cols.append(unit_means(v, block))
            stats.update(torch.stack(cols, -1))
