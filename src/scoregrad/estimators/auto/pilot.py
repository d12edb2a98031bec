"""A candidate's pilot data (unit rows, timed calls) and the plans Auto makes from them: units
per candidate, shared draws, and the counted race's strata combined into one estimate."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ...core.chunks import unit_means
from ...core.strata import stratified_rows
from ...errors import ScoregradError
from ..base import Contributions

#: fewest rows (independent units, or calls) before a candidate's variance is compared at all
MIN_ROWS = 8
#: the smallest relative difference between two timed calls the fit takes as real
FIT_RESOLUTION = 0.1


class Pilot:
    """A candidate's accumulated pilot data: unit-level gradient rows and (units, seconds) runs."""

    def __init__(self, estimator, evals_per_unit: int, lo: int | None, final: int | None,
                 row_units: int):  # fmt: skip
        self.estimator = estimator
        self.evals_per_unit = evals_per_unit
        self.final = final or 1  # units of the winner's run (the cost is predicted there)
        self.min_round = max(lo or 1, MIN_ROWS * row_units)
        self.row_units = row_units
        self.lo = lo
        self.rows: list[np.ndarray] = []  # float64 on the host: a few hundred rows each, whose
        # moments NumPy takes in microseconds (torch's per-op cost would dominate the pilot)
        self.n_rows = 0
        self.weight = 1  # units behind one row
        self.runs: list[tuple[int, float]] = []
        self.units = 0
        self.evals = 0
        self.alive = True
        self.status = ""
        self._variance = None  # (rows seen, (variance, relative se)): recomputed on new rows

    @property
    def depth(self) -> int:
        """Independent units behind the rows: a row is one unit, or (the expectation door's
        pilot) the mean of one call's ``row_units`` units."""
        return self.n_rows * max(1, self.row_units // max(1, self.estimator.granularity))

    def add(self, rows: torch.Tensor, weight: int, units: int, seconds: float, evals: int):
        self.rows.append(rows.detach().to("cpu", torch.float64).reshape(rows.shape[0], -1).numpy())
        self.n_rows += rows.shape[0]
        self.weight = weight
        self.runs.append((units, seconds))
        self.units += units
        self.evals += evals

    def variance(self) -> tuple[float, float]:
        """(variance per unit, its relative standard error) from the rows' fourth moments:
        d_i = |g_i - ḡ|², v = weight · Σ d_i / (m - 1), se(v)/v ≈ sd(d) / (mean(d) √m)."""
        if self._variance is not None and self._variance[0] == len(self.rows):
            return self._variance[1]
        self._variance = len(self.rows), self._measure_variance()
        return self._variance[1]

    def _measure_variance(self) -> tuple[float, float]:
        x = np.concatenate(self.rows) if len(self.rows) > 1 else self.rows[0]
        m = x.shape[0]
        mean = np.ones(m) @ x / m  # (a matrix product: NumPy's column mean is slower)
        centred = x - mean
        d = np.einsum("ij,ij->i", centred, centred)
        s1, s2, size = float(d.sum()), float(d @ d), float(mean @ mean)
        v = s1 / (m - 1) * self.weight
        floor = 1e-12 * size * self.weight  # rounding: an exact estimator
        if v <= floor:
            return floor, 0.0
        sd_d = math.sqrt(max(s2 - s1 * s1 / m, 0.0) / (m - 1))
        # at least the Gaussian value √(2/m): a few rows understate heavy tails
        return v, max(sd_d / (s1 / m), math.sqrt(2.0)) / math.sqrt(m)

    def fitted_cost(self) -> tuple[float, float]:
        """(a, b) of the CPU time of one call of u units, t = a + b u, from the first and the last
        run; b is at least what the timer can resolve between them (``FIT_RESOLUTION`` of the
        first call's time), so an overhead-bound pair of calls does not read as free."""
        (u0, t0), (u1, t1) = self.runs[0], self.runs[-1]
        if u1 <= u0:
            return 0.0, t1 / u1
        b = max(t1 - t0, FIT_RESOLUTION * t0) / (u1 - u0)
        return max(t0 - b * u0, 0.0), b

    def marginal_per_eval(self) -> float:
        return self.fitted_cost()[1] / self.evals_per_unit

    def cost(self, kind: str, per_eval: float) -> float:
        """Cost of one unit in the winner's run (``final`` units): evaluations of f, or CPU seconds
        a/final + b from the fitted call time (small pilot calls are mostly per-call overhead,
        which the final run pays once), at least ``per_eval`` seconds per evaluation (the
        cheapest candidate's marginal cost: f's own cost does not amortise)."""
        if kind == "evals":
            return float(self.evals_per_unit)
        a, b = self.fitted_cost()
        return max(a / self.final + b, self.evals_per_unit * per_eval)

    def screen_cost(self, kind: str) -> float:
        """Cost of one unit as the first round measured it (evaluations, or seconds per unit)."""
        if kind == "evals":
            return float(self.evals_per_unit)
        units, secs = self.runs[0]
        return secs / units


def whole_units(est, units: float) -> int | None:
    """The largest whole number of ``est``'s groups ≤ ``units`` that ``est.check`` accepts, or None
    (sizes below its minimum fail ``check``; f is never evaluated)."""
    g = max(1, est.granularity)
    u = int(max(units, 0) // g) * g
    if u < g:
        return None
    try:
        est.check(u)
    except ScoregradError:
        return None
    return u


def smallest_units(est, limit_groups: int = 64) -> int | None:
    """The fewest units ``est`` can run (a few groups at most), or None."""
    g = max(1, est.granularity)
    for u in range(g, limit_groups * g + 1, g):
        if whole_units(est, u) is not None:
            return u
    return None


def equal_units(pilots, evals: float) -> list:
    """[(pilot, units)]: equal units for each pilot within ``evals`` evaluations, except that a
    pilot never runs fewer than its ``min_round`` (those take their minimum, the rest share what
    is left)."""
    floor = set()
    for _ in range(len(pilots) + 1):
        rest = [p for p in pilots if p not in floor]
        left = evals - sum(p.min_round * p.evals_per_unit for p in floor)
        want = left / sum(p.evals_per_unit for p in rest) if rest else 0.0
        low = {p for p in rest if p.min_round > want}
        if not low:
            break
        floor |= low
    return [(p, p.min_round if p in floor else max(whole_units(p.estimator, want) or 0, p.min_round))
            for p in pilots]  # fmt: skip


@dataclass
class Stratum:
    """A counted chunk of the race: its contributions, evaluations, estimator and weight."""

    contributions: Contributions
    evals: int
    label: str
    weight: float


def unit_variance(p: Pilot) -> float:
    """A pilot's variance per unit, kept above zero (an exact estimator's is rounding)."""
    return max(p.variance()[0], 1e-300)


def draw_groups(plan, shared: bool) -> list:
    """[(pilots, units)]: the plan's candidates that can share one draw (equal ``shared_draw``
    keys and units) together when ``shared``, every other one alone; in the plan's order."""
    groups: dict = {}
    for p, units in plan:
        key = p.estimator.shared_draw() if shared else None
        groups.setdefault((key, units) if key is not None else (id(p),), ([], units))[0].append(p)
    return list(groups.values())


def flat_rows(c) -> torch.Tensor:
    """A candidate's contributions as unit-level rows of the flattened gradient."""
    grads = torch.cat([g.reshape(g.shape[0], -1) for g in c.grads.values()], 1)
    return unit_rows(grads, c.block)


def combine_strata(parts, weights) -> Contributions:
    """One contribution set whose plain mean and standard error are those of the weighted strata
    (``core.strata``): the unit rows of each part, values and each gradient alike."""
    values = [unit_means(c.values, c.block) for c in parts]
    grads = {k: [unit_means(c.grads[k], c.block) for c in parts] for k in parts[0].grads}
    return Contributions(
        values=stratified_rows(values, weights),
        grads={k: stratified_rows(g, weights) for k, g in grads.items()},
        block=1,
    )


def unit_rows(g: torch.Tensor, block: int) -> torch.Tensor:
    if block == 1:
        return g
    return g.reshape(g.shape[0] // block, block, -1).mean(1)
