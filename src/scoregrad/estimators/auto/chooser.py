"""``Auto``: let a short pilot choose the estimator (``estimator="auto"`` in both doors).

The candidates are every registered estimator of ∇E[f] whose declared capabilities fit the
distribution and f (``supports(dist)``, ``doors``, ``biased``, ``needs_differentiable_f``), each in
the configurations its class offers (``Estimator.auto_candidates``: the score function with no
baseline, a leave-one-out baseline, the optimal control variate, antithetic pairs). Stateful
estimators (REBAR, RELAX) learn across calls, so a pilot of a few units says little about them; they
are left out. For a candidate k the pilot measures

    v_k = tr Cov(ĝ_unit)   (variance per unit, from the pilot's own per-unit contributions)
    c_k = cost per unit    (CPU seconds, fitted as t = a + b·u from two calls so that a small
                            call's overhead is paid once in the final run, and at least the
                            cheapest candidate's seconds per evaluation × its evaluations per
                            unit; or evaluations of f per unit with ``cost="evals"``)

and the final estimate's variance × cost is v_k c_k whatever the budget (the work-normalised
variance of Glynn & Whitt 1992). Candidates draw with common random numbers (each round's start
from one seed). A candidate whose log(v c) is clearly above the best one's (by ``z`` standard
errors of the log ratio, from the fourth moments of the units, plus ``TIME_NOISE`` per timed call)
is dropped. The plain score function, the doors' default, is kept unless a candidate is clearly
better than it, or better on the very same samples (a baseline or control variate of its own
draw), so the choice is never a gamble against the default.

In ``estimate_grad`` the choice is made in two steps:

1. a *screen*: every candidate on equal units (at most ``SCREEN_UNITS`` each with
   ``cost="time"``), within ``pilot_share`` of n. Its samples are discarded (the choice depends on
   them), so the estimate stays unbiased whatever is chosen;
2. a *counted race* among the few survivors that rank best (``RACE_MAX``, one per
   ``Estimator.kin``, within ``RACE_GAP`` of the leader and, timed, ahead of it in one view at least): on
   ``RACE_SHARE`` of the rest, in two rounds of equal-cost chunks, clearly worse racers dropping
   out after each; the winner runs the rest. The race's chunks are part of the estimate, each
   with a weight fixed before it is drawn (its predicted share of the information, units over
   variance per unit taken ``z`` standard errors high, from earlier rows; the winner's run takes
   the remaining weight), so the weighted mean is unbiased (a martingale argument: each chunk is
   unbiased given what came before, and its weight is known then), and
   its standard error is the stratified one (``core.strata``; Cochran 1977, §5.3).

Where the door needs i.i.d. per-sample rows (``return_per_sample``, or n streamed in chunks) the
race is skipped: the screen alone decides. With ``cost="evals"`` the choice depends on the seed
only (bit-for-bit reproducible); with ``cost="time"`` a close call may go either way on another
run, since CPU times vary.

In ``estimate_grad`` the budget n is in evaluations of f (n samples for the score function), and
``GradientEstimate.auto`` is the ``AutoReport`` (``race`` lists the counted chunks: estimator and
evaluations). A one-shot call runs its own pilot. A prepared estimate (``scoregrad.prepare``:
one call site, called in a loop) keeps its ``Auto``'s choice for ``revisit_every`` calls while f,
the parameter shapes, dtypes and ``requires_grad``, n and the context shape stay the same: those
calls run the chosen estimator on the whole budget, with no pilot (still unbiased: the choice
depends on earlier calls' samples only), and the report's ``calls`` counts them; then it pilots
again. In ``expectation`` (training loops) n is the
per-call budget; the pilot (the screen and one more round for its survivors, on calls of the
door's size, all discarded) runs at the first call and again every
``revisit_every`` calls (the best estimator changes as the parameters move), each time spending at
most ``pilot_share`` of the evaluations of the calls it serves; ``Auto.report`` holds the last
report. Its variances are of the gradient with respect to the distribution's own tensors (the
leaves behind them are not known to the door).

>>> import torch, scoregrad as sg
>>> from torch.distributions import Normal
>>> mu = torch.tensor(1.0, requires_grad=True)
>>> est = sg.estimate_grad(lambda x: (x - 3.0) ** 2, lambda mu: Normal(mu, 1.0), {"mu": mu},
...                        n=20_000, estimator=sg.Auto(cost="evals"), seed=0)
>>> est.auto.choice  # with cost="evals" the choice depends on the seed only
'Pathwise()'
>>> est.auto.pilot_share <= 0.1
True
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import time
import weakref

import torch

from ...core.seeding import seeded
from ...errors import ArgumentError, EstimatorNotApplicable, SampleSizeError
from ..base import Estimator
from ..registry import registered
from .candidates import (
    by_label,
    context_rows,
    dist_tensors,
    probe_differentiable,
    unfit,
    warm_up,
)
from .pilot import (
    MIN_ROWS,
    Pilot,
    Stratum,
    combine_strata,
    draw_groups,
    equal_units,
    flat_rows,
    smallest_units,
    unit_variance,
    whole_units,
)
from .report import AutoReport, PilotRow

__all__ = ["Auto"]

#: share of the pilot's budget its first round (every candidate, equal units) may spend; the

#: survivors share the rest in one more round (two timed calls each: the cost fit needs both)
SCREEN_SHARE = 1 / 3

#: share of the estimate's own evaluations (after the discarded screen) on which the screen's

#: survivors race in ``estimate_grad``; their chunks count in the estimate, so a close race

#: costs little, and the winner runs the rest
RACE_SHARE = 0.2

#: most survivors of the screen that race (besides the reference, the plain score function)
RACE_MAX = 2

#: a survivor races only if its screen score is within this factor of the leader's (a wider gap

#: the screen has already told apart, and racing it would only spend the budget on a loser)
RACE_GAP = 3.0

#: with ``cost="time"``, a survivor the leader beats by this factor in both views of the screen
#: (variance × evaluations, and variance × CPU time, there beyond ``TIME_NOISE`` as well) does not
#: race: it has no trade-off to win on
DOMINANCE = 1 / 1.2

#: most units per candidate in the screen with ``cost="time"``: its calls' time is mostly per-call

#: overhead beyond this, and a larger screen only delays the counted race and the winner's run
SCREEN_UNITS = 512

#: relative error of one timed pilot call on a shared machine (scheduling, caches)
TIME_NOISE = 0.15

#: fewest independent units behind a candidate's rows (``Pilot.depth``) before it may be
#: eliminated or the race settled early
ELIM_ROWS = 32

#: fewest calls per candidate in the expectation door's pilot
MIN_CALLS = 8


#: ``Auto._grad_problem`` after ``load_state_dict``: the next estimate_grad call's problem is
#: taken to be the one the saved choice was made for (a resumed loop)
RESTORED = "restored"


@dataclasses.dataclass(frozen=True, eq=False)
class _Problem:
    """What an estimate_grad choice is made for: the call site (the door's ``dist_fn``, which is
    one object per prepared estimate and a new one per one-shot call), f and where it runs
    (``executor``), all three compared by identity; and by value the ``signature``: the
    parameters' names, shapes, dtypes, devices and requires_grad, n, the context's shape, the
    value dtype asked for and whether rows are iid."""

    f: object
    dist_fn: object
    executor: object
    signature: tuple

    @classmethod
    def of(cls, evaluator, dist_fn, params, n, context) -> _Problem:
        return cls(evaluator.f, dist_fn, evaluator.executor, (
            tuple((k, tuple(p.shape), p.dtype, p.device, p.requires_grad)
                  for k, p in params.items()),
            n, None if context is None else tuple(context.shape), evaluator.dtype,
            evaluator.iid_rows,
        ))  # fmt: skip

    def same_as(self, other: _Problem) -> bool:
        return (
            self.f is other.f and self.dist_fn is other.dist_fn
            and self.executor is other.executor and self.signature == other.signature
        )  # fmt: skip


def _real(x) -> bool:
    """A real number (not a bool), finite or not: what a numeric option takes."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and not math.isnan(x)


class Auto(Estimator):
    """The estimator chosen by a pilot (see the module docstring). ``"auto"`` in either door is
    ``Auto()``.

    Args:
        allow_biased: also consider biased estimators (relaxations); their bias is not measured.
        cost: ``"time"`` (CPU seconds per unit) or ``"evals"`` (evaluations of f per unit: say so
            when f is the expensive part, and for a choice that depends on the seed only).
        pilot_share: the largest share of the run's evaluations the pilot may spend (≤ 0.5).
        differentiable: whether f is differentiable torch code (pathwise candidates); None probes
            it on two samples: f's output must require grad with respect to an rsample (not
            when n leaves no room for a pilot: the default then runs on all of n).
        candidates: estimator objects to choose from instead of the registry's.
        revisit_every: pilot again after this many calls (the expectation door; and
            the calls of a prepared estimate_grad, see the module docstring).
        z: standard errors of the log ratio that make one candidate clearly better.
        tolerance: the pilot stops when the leader is within this factor of every survivor.
    """

    name = "auto"
    unit = "evaluation of f"
    stateful = True

    def __init__(
        self,
        allow_biased: bool = False,
        cost: str = "time",
        pilot_share: float = 0.1,
        differentiable: bool | None = None,
        candidates=None,
        revisit_every: int = 200,
        z: float = 2.0,
        tolerance: float = 1.5,
    ):
        if cost not in ("time", "evals"):
            raise ArgumentError(f"Auto(cost=...) is 'time' or 'evals', got {cost!r}.")
        for name, value in (("allow_biased", allow_biased), ("differentiable", differentiable)):
            if not isinstance(value, bool) and not (name == "differentiable" and value is None):
                raise ArgumentError(
                    f"Auto({name}=...) is True or False"
                    + (" (or None: probe f)" if name == "differentiable" else "")
                    + f", got {value!r}."
                )
        if not (_real(pilot_share) and 0.0 < pilot_share <= 0.5):
            raise ArgumentError(
                f"Auto(pilot_share=...) must be in (0, 0.5], got {pilot_share!r}; e.g. 0.1."
            )
        if not (_real(z) and 0.0 < z < math.inf):
            raise ArgumentError(
                f"Auto(z=...) is a positive number of standard errors, got {z!r}; e.g. 2."
            )
        if not (_real(tolerance) and 1.0 <= tolerance < math.inf):
            raise ArgumentError(
                f"Auto(tolerance=...) is a factor of at least 1, got {tolerance!r}; e.g. 1.5."
            )
        if (
            isinstance(revisit_every, bool)
            or not isinstance(revisit_every, int)
            or revisit_every < 1
        ):
            raise ArgumentError(
                f"Auto(revisit_every=...) must be a positive int, got {revisit_every!r}."
            )
        if candidates is not None:
            bad = [c for c in candidates if not isinstance(c, Estimator)]
            if bad or not candidates:
                raise ArgumentError(
                    f"Auto(candidates=...) takes a non-empty list of estimator objects, got {bad!r}."
                )
            if any(isinstance(c, Auto) for c in candidates):
                raise ArgumentError(
                    "Auto(candidates=...) holds an Auto: Auto chooses among estimators and cannot "
                    "be one of its own candidates. Fix: list the estimators themselves."
                )
        self.allow_biased = bool(allow_biased)
        self.cost = cost
        self.pilot_share = float(pilot_share)
        self.differentiable = differentiable
        self.candidates = list(candidates) if candidates is not None else None
        self.revisit_every = revisit_every
        self.z = float(z)
        self.tolerance = float(tolerance)
        self.report: AutoReport | None = None
        self._registry_pool = None  # (candidates, skipped learners), built on first use
        self._evals_memo: dict = {}  # evaluations per unit of each candidate for one distribution
        self._estimate = None  # weakref to the evaluator of the estimate in progress
        self._choice = None  # the chosen estimator object
        self._probed: bool | None = None  # f's differentiability, once probed
        self._calls = 0  # expectation door: calls since the last pilot
        # estimate_grad door: the problem the last pilot chose for (None: pilot at the next
        # call; RESTORED: a loaded state's, taken to be the next call's), calls it has served,
        # their evaluations, its report, and the pilots so far
        self._grad_problem = None
        self._grad_calls = 0
        self._served_evals = 0
        self._pilot_report: AutoReport | None = None
        self._grad_pilots = 0
        self._pilots = 0
        self._pilot_evals = 0
        self._total_evals = 0

    # -- declared capabilities ------------------------------------------------------------------
    @property
    def biased(self) -> bool:
        return self.allow_biased

    def supports(self, dist) -> str | None:
        pool, _ = self._pool()  # (the first candidate that fits answers: no full pass)
        if any(unfit(e, dist, None, True, None, self.allow_biased) is None for e in pool):
            return None
        if self.candidates is not None:
            return "none of its candidates applies to it: " + "; ".join(
                f"{e!r}: {unfit(e, dist, None, True, None, self.allow_biased)}" for e in pool
            )
        return "no registered estimator of E[f] applies to it" + (
            "" if self.allow_biased else " (biased ones are excluded: Auto(allow_biased=True))"
        )

    @classmethod
    def auto_candidates(cls) -> list:
        return []  # Auto never chooses among Autos

    # -- candidates -----------------------------------------------------------------------------
    def _options(self, dist, door, differentiable=True, executor=None, dominated=False):
        """(candidates that fit, {repr: why not} for those that do not), from declarations. A
        candidate that another one Rao-Blackwellises (``Estimator.rao_blackwellises``) is left
        out unless ``dominated``: at the same cost its variance is never lower."""
        pool, learners = self._pool()
        fit, skipped, seen = [], dict(learners), set()
        for est in pool:
            label = repr(est)
            if label in seen:
                continue
            seen.add(label)
            why = unfit(est, dist, door, differentiable, executor, self.allow_biased)
            if why is None:
                fit.append(est)
            else:
                skipped[label] = why
        if dominated:
            return fit, skipped
        kept = []
        for est in fit:
            better = next((o for o in fit if type(est) in o.rao_blackwellises), None)
            if better is None:
                kept.append(est)
            else:
                skipped[repr(est)] = (
                    f"{better!r} Rao-Blackwellises it (the same draws and evaluations of f, "
                    "never a higher variance)"
                )
        return kept, skipped

    def _pool(self) -> tuple[list, dict]:
        """(the estimators to consider, {name: why not} for registered classes not built): the
        user's candidates, or the registry's configurations, built once per ``Auto``. A class that
        declares itself stateful is named, not built (Auto leaves learners out, and building
        one may build a network)."""
        if self.candidates is not None:
            return self.candidates, {}
        if self._registry_pool is None:
            pool, learners = [], {}
            for cls in registered().values():
                if getattr(cls, "stateful", False) is True:  # declared on the class itself
                    learners[cls.__name__] = (
                        "it learns across calls, which a short pilot cannot judge"
                    )
                else:
                    pool += cls.auto_candidates()
            self._registry_pool = pool, learners
        return self._registry_pool

    def _is_reference(self, est) -> bool:
        """Whether ``est`` is the doors' default, the plain score function."""
        from ..score_function import ScoreFunction

        return repr(est) == repr(ScoreFunction())

    def _f_differentiable(self, evaluator, dist) -> bool:
        """The user's word, else a probe on two samples: f's output requires grad w.r.t. x."""
        if self.differentiable is not None:
            return bool(self.differentiable)
        if evaluator.executor is not None:
            return False
        if self._probed is None:
            self._probed = probe_differentiable(evaluator, dist)
        return self._probed

    # -- estimate_grad door -----------------------------------------------------------------------
    def contributions(self, evaluator, dist_fn, params, n, context=None):
        dist = dist_fn(**params)
        if self._estimate is not None and self._estimate() is evaluator:  # a later chunk
            before = evaluator.n_evals
            out = self._run_final(self._choice, evaluator, dist_fn, params, dist, n, context)
            self.report.total_evals += evaluator.n_evals - before
            self._served_evals += evaluator.n_evals - before
            return out
        self._estimate = weakref.ref(evaluator)
        problem = _Problem.of(evaluator, dist_fn, params, n, context)
        if self._reuses(problem):  # the last pilot's choice still serves: no pilot this call
            self._grad_calls += 1
            before = evaluator.n_evals
            out = self._run_final(self._choice, evaluator, dist_fn, params, dist, n, context)
            self._served_evals += evaluator.n_evals - before
            # a report per call (earlier estimates keep theirs): the pilot's share of its calls
            self.report = dataclasses.replace(
                self._pilot_report, calls=self._grad_calls, total_evals=self._served_evals,
                race=[],
            )  # fmt: skip
            return out
        self._probed = None
        if self.cost == "time":
            warm_up(evaluator.dtype or torch.get_default_dtype(), evaluator.device)
        start, t0 = evaluator.n_evals, time.process_time()

        def run(group: list[Pilot], units: int):
            lead, *others = [p.estimator for p in group]
            own: list[float] = []
            out = lead.contributions_shared(
                others, evaluator, dist_fn, params, units, context=context_rows(context, units),
                seconds=own,
            )  # fmt: skip
            # a row: a block of units; each member's own seconds beyond the shared draw
            return [(flat_rows(c), c.block, s) for c, s in zip(out, own, strict=True)]

        # a budget too small for any pilot (two candidates' fewest rows) runs the default on all
        # of n: no probe of f either, whose two evaluations would leave it less than n
        allowance = self._pilot_allowance(evaluator, n)
        room = allowance >= 2 * MIN_ROWS
        differentiable = (
            self._f_differentiable(evaluator, dist) if room else bool(self.differentiable)
        )
        cands, skipped = self._options(dist, "estimate_grad", differentiable, evaluator.executor)
        if not room and self.differentiable is None:
            for est in self._pool()[0]:  # (those the distribution refuses keep its reason)
                if est.needs_differentiable_f and repr(est) in skipped and not est.supports(dist):
                    skipped[repr(est)] = "n leaves no room for a pilot (f was not probed)"
        budget = allowance - (evaluator.n_evals - start)
        report, pilots, ref_pilot = self._choose(
            cands, skipped, dist, budget,
            lambda est: whole_units(est, (n - budget) / self._evals(est, dist)), run, evaluator,
            rounds=1, max_units=SCREEN_UNITS if self.cost == "time" else None, shared=True,
        )  # fmt: skip
        pilot_seconds, pilot_evals = time.process_time() - t0, evaluator.n_evals - start
        counted = n - pilot_evals  # every evaluation from here on is part of the estimate

        def call(est, units):
            return est.contributions(
                evaluator, dist_fn, params, units, context=context_rows(context, units)
            )

        strata = []
        if sum(p.alive for p in pilots) > 1 and not evaluator.iid_rows:
            report, strata = self._race(pilots, ref_pilot, skipped, counted, evaluator, call)
        self._choice = by_label(cands, report.choice)
        raced = sum(s.evals for s in strata)
        final = self._run_final(
            self._choice, evaluator, dist_fn, params, dist, counted - raced, context
        )  # fmt: skip
        report.pilot_seconds, report.pilot_evals = pilot_seconds, pilot_evals
        report.race = [(s.label, s.evals) for s in strata]
        report.total_evals = evaluator.n_evals - start
        report.revisits = self._grad_pilots
        self._grad_pilots += 1
        self._grad_problem, self._grad_calls = problem, 1
        self._served_evals, self._pilot_report = report.total_evals, report
        self.report = report
        if not strata:
            return final
        # the race's chunks count, each with a weight fixed before it was drawn (the final chunk
        # takes the rest), so the estimate stays unbiased
        weights = [s.weight for s in strata]
        return combine_strata(
            [s.contributions for s in strata] + [final], weights + [1 - sum(weights)]
        )

    def _pilot_allowance(self, evaluator, n: int) -> int:
        """Evaluations the estimate_grad pilot may spend: ``pilot_share`` of the estimate's n, or,
        when the door streams it in chunks of which this call is the first, of the whole n
        (``Evaluator.planned``) but at most half of this chunk, whose rest is the estimate's
        first part (a chunk of 1000 would otherwise leave a pilot of 98 evaluations, too few to
        screen anything, whatever the whole n)."""
        own = int(self.pilot_share * 0.98 * n)
        whole = evaluator.planned
        if whole is None or whole <= n:
            return own
        return max(own, min(int(self.pilot_share * 0.98 * whole), n // 2))

    def _reuses(self, problem) -> bool:
        """Whether this estimate_grad call runs the last pilot's choice without a pilot: the same
        problem (``_Problem``) within ``revisit_every`` calls of that pilot."""
        if self._choice is None or self._grad_calls >= self.revisit_every:
            return False
        if self._grad_problem is RESTORED and self._pilot_report is not None:
            self._grad_problem = problem  # a resumed loop: the saved choice serves its problem
        return self._grad_problem is not None and self._grad_problem.same_as(problem)

    def _evals(self, est, dist) -> int:
        """``est.evals_per_unit(dist)``, asked once per candidate and distribution (for the
        measure-valued estimators it draws a sample to find the weak derivative's parts)."""
        key = (id(est), id(dist))
        held = self._evals_memo.get("dist")
        if held is None or held() is not dist:  # (a weak reference: a dead one's id may recur)
            self._evals_memo = {"dist": weakref.ref(dist)}
        if key not in self._evals_memo:
            self._evals_memo[key] = est.evals_per_unit(dist)
        return self._evals_memo[key]

    def _run_final(self, est, evaluator, dist_fn, params, dist, evals, context):
        """The chosen estimator on ``evals`` evaluations of f."""
        units = whole_units(est, evals / self._evals(est, dist))
        if units is None:
            raise SampleSizeError(
                f"Auto chose {est!r}, but {evals} evaluations of f are too few for it. Fix: raise "
                "n (or chunk_size), or pass an estimator directly."
            )
        return est.contributions(
            evaluator, dist_fn, params, units, context=context_rows(context, units)
        )

    # -- the pilot ----------------------------------------------------------------------------------
    def _choose(self, cands, skipped, dist, budget, final_units, run, evaluator,
                row_units=None, rounds=2, max_units=None, shared=False):  # fmt: skip
        """Race the affordable candidates on ``budget`` evaluations and pick one: the report, the
        pilots and the reference's pilot (None).

        ``final_units(est)`` is how many units the winner will run (None if too few);
        ``run(pilots, units)`` runs candidates that share a draw (one, unless ``shared``: then
        those with one ``shared_draw`` key) and returns a (unit-level rows, units per row, its
        own CPU seconds beyond the shared part) for each; ``rounds`` 1 screens only (on the
        whole budget), 2 adds a round for the survivors; ``max_units`` caps a candidate's units
        in the first round.
        """
        if not cands:
            raise EstimatorNotApplicable(
                f"Auto found no candidate for {type(dist).__name__}: "
                + "; ".join(f"{k}: {v}" for k, v in skipped.items())
                + ". Fix: pass one of those estimators configured to apply, allow_biased=True, "
                "or differentiable=True if f is differentiable torch code."
            )
        reference = next((c for c in cands if self._is_reference(c)), None)
        pilots = []
        for est in cands:
            e, lo, final = self._evals(est, dist), smallest_units(est), final_units(est)
            rows = row_units(est) if row_units else est.granularity
            if lo is None or final is None or final < lo or rows is None:
                skipped[repr(est)] = "the budget is too small for it"
            else:
                pilots.append(Pilot(est, e, lo, final, rows))
        # round 0 gives every candidate its minimum rows; the costliest go first if it cannot
        pilots.sort(key=lambda p: (p.estimator is not reference, p.evals_per_unit * p.min_round))
        while pilots and sum(p.evals_per_unit * p.min_round for p in pilots) > budget:
            dropped = pilots.pop()
            skipped[repr(dropped.estimator)] = (
                f"the pilot's {budget} evaluations are too few for it"
            )
        if len(pilots) < 2:
            usable = [c for c in cands if final_units(c)]
            fallback = reference if reference in usable else (pilots[0].estimator if pilots else
                                                              (usable or cands)[0])  # fmt: skip
            rows = [PilotRow(repr(p.estimator), status="not run") for p in pilots]
            report = AutoReport(repr(fallback), "too small a budget for a pilot: the default",
                                self.cost, rows, skipped)  # fmt: skip
            return report, [], None
        ref_pilot = next((p for p in pilots if p.estimator is reference), None)
        # round 0 screens every candidate on a third of the budget, equal units each; the
        # survivors share what is left in round 1 (a race of two rounds keeps the pilot to a few
        # calls, which matters when f is cheap and a call's overhead is most of its time)
        spent, device = 0, evaluator.device
        for r in range(rounds):
            alive = [p for p in pilots if p.alive]
            left = budget - spent
            share = SCREEN_SHARE * budget if r == 0 and rounds > 1 else left
            plan = equal_units(alive, min(share, left))
            if r == 0 and max_units is not None:
                plan = [(p, min(u, max(p.min_round, whole_units(p.estimator, max_units) or u)))
                        for p, u in plan]  # fmt: skip
            if not plan or sum(u * p.evals_per_unit for p, u in plan) > left:
                break
            if r > 0 and all(u < 2 * p.runs[-1][0] for p, u in plan):
                break  # too little left for a second round to tell more than the first
            # common random numbers: every candidate of a round starts from the same seed, so
            # estimators that draw alike (the score-function family) see the same samples
            seed = int(torch.randint(0, 2**62, (1,)))
            for group, units in draw_groups(plan, shared):
                before, t0 = evaluator.n_evals, time.process_time()
                try:
                    with seeded(seed, device):
                        outs = run(group, units)
                except EstimatorNotApplicable as e:  # e.g. pathwise on a piecewise-constant f
                    for p in group:
                        p.alive, p.status = False, f"refused: {str(e).split('. ')[0]}"
                else:
                    # each member is charged what it would cost alone: the call's shared part
                    # (the draw, f, the bookkeeping) and its own work, and every evaluation
                    secs, evals = time.process_time() - t0, evaluator.n_evals - before
                    common = max(secs - sum(own for *_, own in outs), 0.0)
                    for p, (rows, weight, own) in zip(group, outs, strict=True):
                        p.add(rows, weight, units, common + own, evals)
                spent += evaluator.n_evals - before
            if self._settle(pilots, ref_pilot, screen=r == 0):
                break
        return self._decide(pilots, ref_pilot, skipped), pilots, ref_pilot

    def _race(self, pilots, ref_pilot, skipped, counted, evaluator, call):
        """Counted rounds among the screen's shortlist, on ``RACE_SHARE`` of the ``counted``
        evaluations: each racer runs a chunk of equal cost (evaluations, or CPU time: as the
        screen measured it, then as fitted from two calls) on a third of the race's budget, then
        on the rest; clearly worse ones drop out after each round. The
        chunks are part of the estimate (``call(est, units)`` returns their contributions); with
        the report, the list of ``Stratum`` they make.

        A chunk's weight in the estimate is fixed before it is drawn, from what earlier rows
        say: its share of the information (units over variance per unit) expected from the
        chunks of the round and the winner's run, which the current leader is predicted to
        make (Cochran's optimum allocation, 1977, §5.5, used for the weights). Weights that
        depend only on earlier samples keep the weighted mean unbiased; close estimates of the
        variances only make it efficient."""
        lead = self._shortlist(pilots, ref_pilot)
        strata, budget, spent = [], RACE_SHARE * counted, 0
        rounds = 2  # (each round costs every racer a call)
        for r in range(rounds):
            alive = [p for p in pilots if p.alive]
            if len(alive) < 2:
                break
            share = budget / 3 if r < rounds - 1 else budget - spent
            # equal cost each: units u_k = λ / c_k, with c_k evaluations per unit or CPU time per
            # unit, as the screen measured it and then as fitted from two calls of each
            if r == 0:
                cost = {p: p.screen_cost(self.cost) for p in alive}
            else:
                cost = {p: sc[3] for p, sc in self._scores(alive).items()}
            if len(cost) < len(alive):
                break
            lam = share / sum(p.evals_per_unit / cost[p] for p in alive)
            plan = [(p, whole_units(p.estimator, lam / cost[p])) for p in alive]
            if any(u is None or u < max(p.min_round, 2 * p.estimator.granularity) for p, u in plan):
                break  # chunks too small to tell more than the screen did
            lead = lead if lead.alive else min(alive, key=lambda p: p.variance()[0])
            after = counted - spent - sum(u * p.evals_per_unit for p, u in plan)
            # a chunk's information at its variance's upper bound (z standard errors up): a
            # racer whose few rows hide a heavy tail would otherwise weigh far more than it
            # carries; the winner's run, at the leader's estimate, takes what this leaves
            info = [u / (unit_variance(p) * math.exp(self.z * p.variance()[1])) for p, u in plan]
            total = sum(info) + max(after, 0) / lead.evals_per_unit / unit_variance(lead)
            left = 1.0 - sum(s.weight for s in strata)
            for (p, units), i in zip(plan, info, strict=True):
                before, t0 = evaluator.n_evals, time.process_time()
                try:
                    c = call(p.estimator, units)
                except EstimatorNotApplicable as e:
                    p.alive, p.status = False, f"refused: {str(e).split('. ')[0]}"
                    continue
                finally:
                    spent += evaluator.n_evals - before
                p.add(
                    flat_rows(c),
                    c.block,
                    units,
                    time.process_time() - t0,
                    evaluator.n_evals - before,
                )
                strata.append(
                    Stratum(c, evaluator.n_evals - before, repr(p.estimator), left * i / total)
                )
            if self._settle(pilots, ref_pilot):
                break
        return self._decide(pilots, ref_pilot, skipped), strata

    def _shortlist(self, pilots, ref_pilot):
        """Keep for the race the ``RACE_MAX`` survivors of the screen that rank best, at most one
        per kin (``Estimator.kin``: those that weigh f alike), each only within ``RACE_GAP`` of
        the leader and, timed, not beaten by it in both views (``DOMINANCE``; in the CPU-time view
        by more than the timing noise too, ``TIME_NOISE``), and the reference
        if the screen did not clearly beat it; return the leader ("within" by ``z`` standard
        errors of the log ratio). The rank is by variance × evaluations per unit and, with
        ``cost="time"``, also by the screen's CPU time per unit (the geometric mean of the two,
        since a small call's time is mostly overhead)."""
        alive = [p for p in pilots if p.alive and p.n_rows >= MIN_ROWS]
        views = [self._scores(alive, kind="evals", screen=True)]
        if self.cost == "time":
            views.append(self._scores(alive, kind="time", screen=True))

        def rank(p):
            return sum(math.log(max(v[p][0], 1e-300)) for v in views) / len(views)

        ranked = sorted(alive, key=rank)
        if not ranked:  # too few rows to rank: all race
            return next(p for p in pilots if p.alive)
        lead = ranked[0]

        # a timed view's ratio is one call's time each, mostly per-call overhead at the screen's
        # size: it shows p ahead of the leader unless p is behind by more than that noise
        time_slack = math.exp(self.z * math.sqrt(2.0) * TIME_NOISE)

        def contender(p):  # near the leader, and (timed) ahead of it in one view at least
            # near: within RACE_GAP, widened by z standard errors of the variances' log ratio
            # (a few rows can understate the leader's heavy tail as well as the others')
            slack = self.z * math.hypot(views[0][p][1], views[0][lead][1])
            near = rank(p) - rank(lead) <= math.log(RACE_GAP) + slack
            return near and (len(views) == 1 or p is lead or any(
                v[p][0] < DOMINANCE * v[lead][0] * (time_slack if timed else 1.0)
                for v, timed in zip(views, (False, True), strict=True)))  # fmt: skip

        # one slot per kin: candidates that weigh f alike err together (a heavy tail the screen's
        # rows hide from one they hide from all, whatever the sampler), so the others of a kin
        # the race already holds would only crowd out an independent view
        keep, kins, families = [], set(), set()
        for p in ranked:
            if len(keep) == RACE_MAX:
                break
            if not contender(p) or p.estimator.kin() in kins:
                continue
            keep.append(p)
            kins.add(p.estimator.kin())
            families.add(p.estimator.shared_draw())
        # the reference races unless the screen clearly beat it, or a candidate of its own shared
        # draw races for it: the screen compared those two on the very same samples, which
        # tells them apart better than two independent chunks of the race would
        ref_key = ref_pilot.estimator.shared_draw() if ref_pilot is not None else None
        if ref_pilot in alive and ref_pilot not in keep:
            if ref_key is None or ref_key not in families:
                keep.append(ref_pilot)
            else:
                ref_pilot.alive, ref_pilot.status = False, "beaten on its own draw"
        for p in pilots:
            if p.alive and p not in keep:
                p.alive, p.status = False, "not shortlisted"
        return lead

    def _scores(self, pilots, alive_only=True, kind=None, screen=False) -> dict:
        """{pilot: (v·c, relative se of v, v, c)} for the (live) pilots with enough rows; c as the
        first round measured it (``screen``) or as fitted for the final run. Timed, with one call
        of each only (a screen, no race), c is the geometric mean of the screen's evaluations and
        CPU seconds per unit: a small call's time is mostly overhead, and evaluations alone miss
        what each unit costs beyond f, so neither view is trusted alone."""
        kind = kind or self.cost
        ready = [p for p in pilots if p.n_rows >= MIN_ROWS and (p.alive or not alive_only)]
        live = [p for p in ready if p.alive and len(p.runs) > 1] or []
        per_eval = min((p.marginal_per_eval() for p in live), default=0.0)
        hedge = kind == "time" and not screen and all(len(p.runs) < 2 for p in ready)
        out = {}
        for p in ready:
            v, rel = p.variance()
            if hedge:
                c = math.sqrt(p.screen_cost("evals") * p.screen_cost("time"))
            else:
                c = p.screen_cost(kind) if screen else p.cost(kind, per_eval)
            out[p] = (v * c, rel, v, c)
        return out

    def _log_gap(self, a, b, kind=None):
        """(log J_b - log J_a, its standard error): gap > z·se means a is clearly better than b.
        Measured CPU times add ``TIME_NOISE`` to each side's relative error (one timed call each)."""
        (ja, ra, *_), (jb, rb, *_) = a, b
        if ja == 0.0 or jb == 0.0:
            return (0.0 if ja == jb else math.inf if ja == 0.0 else -math.inf), 0.0
        noise = TIME_NOISE if (kind or self.cost) == "time" else 0.0
        return math.log(jb) - math.log(ja), math.hypot(ra, rb, noise, noise)

    def _eliminate(self, pilots, screen=False) -> dict:
        """Drop the candidates clearly worse than the best; the scores. After the first round,
        whose small calls measure mostly per-call overhead, a candidate goes only when it is
        clearly worse both in CPU time per unit and in evaluations per unit. Only candidates with
        ``ELIM_ROWS`` units behind their rows judge or are judged: a handful of units can
        understate a heavy-tailed variance by far more than its standard error says."""
        scores = self._scores(pilots, screen=screen)
        views = [(scores, self.cost)]
        if screen and self.cost == "time":
            views.append((self._scores(pilots, kind="evals", screen=True), "evals"))
        if not scores:
            return scores
        worse = {p for p in scores if p.alive and p.depth >= ELIM_ROWS}
        for view, kind in views:
            view = {p: sc for p, sc in view.items() if p.depth >= ELIM_ROWS}
            if not view:
                return scores
            best = min(view, key=lambda p: view[p][0])
            worse &= {
                p for p, s in view.items()
                if p is not best and self._log_gap(view[best], s, kind)[0]
                > self.z * self._log_gap(view[best], s, kind)[1]
            }  # fmt: skip
        for p in worse:
            p.alive, p.status = False, "eliminated"
        return scores

    def _settle(self, pilots, ref_pilot, screen=False) -> bool:
        """Drop clearly worse candidates; True when the race is decided."""
        if any(p.alive and p.depth < ELIM_ROWS for p in pilots):
            return False
        scores = self._eliminate(pilots, screen)
        if not scores:
            return True
        alive = [p for p in scores if p.alive]
        if len(alive) <= 1:
            return True
        if screen and self.cost == "time":
            return False  # the cost at the final size needs a second call of each survivor
        pick, tol = self._pick(scores, ref_pilot), math.log(self.tolerance)
        # decided when the pick is, with confidence, within the tolerance of every survivor
        return all(
            p is pick or -gap + self.z * se < tol
            for p in alive
            for gap, se in [self._log_gap(scores[p], scores[pick])]
        )

    @staticmethod
    def _pick(scores, ref_pilot):
        """The reference unless it is gone (clearly beaten); then the best survivor by
        log(v·c) + its relative standard error: of two close survivors, the one whose variance
        the rows pin down (a few rows understate a heavy-tailed variance, and the spread of
        their squared deviations says so)."""
        if ref_pilot is not None and ref_pilot.alive and ref_pilot in scores:
            return ref_pilot
        alive = [p for p in scores if p.alive] or list(scores)
        return min(alive, key=lambda p: math.log(max(scores[p][0], 1e-300)) + scores[p][1])

    def _decide(self, pilots, ref_pilot, skipped) -> AutoReport:
        self._eliminate(pilots)  # the budget is spent: judge with the rows there are
        scores = self._scores(pilots)
        if scores:
            pick = self._pick(scores, ref_pilot)
            reason = (
                "no candidate clearly beat the default"
                if pick is ref_pilot
                else "lowest variance × cost"
                + (", clearly below the default's" if ref_pilot is not None else "")
            )
        else:
            pick = ref_pilot or pilots[0]
            reason = "no candidate completed a pilot: the default"
        rows, every = [], self._scores(pilots, alive_only=False)
        for p in pilots:
            j, rel, v, c = every.get(p, (math.nan,) * 4)
            status = "chosen" if p is pick else (p.status or "kept")
            rows.append(PilotRow(
                repr(p.estimator), p.units, p.evals, sum(s for _, s in p.runs), v, v * rel, c, j,
                bool(p.estimator.biased), status,
            ))  # fmt: skip
        return AutoReport(repr(pick.estimator), reason, self.cost, rows, skipped)

    # -- expectation door ---------------------------------------------------------------------------
    def surrogate(self, evaluator, dist, n, context=None):
        if self._choice is None or self._calls >= self.revisit_every:
            self._pilot_expectation(evaluator, dist, n, context)
        self._calls += 1
        est = self._choice
        units = whole_units(est, n / self._evals(est, dist))
        before = evaluator.n_evals
        out = est.surrogate(evaluator, dist, units, context=context)
        self._total_evals += evaluator.n_evals - before
        if self.report is not None:  # (none yet after load_state_dict: the next pilot makes one)
            self.report.total_evals = self._total_evals
            self.report.pilot_evals = self._pilot_evals
        return out

    def _pilot_expectation(self, evaluator, dist, n, context):
        """Pilot calls of each candidate's surrogate; rows are their gradients with respect to
        the tensors ``dist`` holds, each the mean of the call's units."""
        self._probed = None
        if self.cost == "time":
            warm_up(evaluator.dtype or torch.get_default_dtype(), evaluator.device)
        start, t0 = evaluator.n_evals, time.process_time()
        inputs = dist_tensors(dist)
        cands, skipped = self._options(
            dist, "expectation", self._f_differentiable(evaluator, dist), evaluator.executor
        )
        budget = int(self.pilot_share * n * self.revisit_every) - (evaluator.n_evals - start)
        share = budget // max(1, len(cands))

        def per_call(est):  # the door's size, or smaller so that MIN_CALLS calls fit the share
            e, lo = self._evals(est, dist), smallest_units(est)
            door = whole_units(est, n / e)
            if not door or lo is None:
                return None
            return max(lo, min(door, whole_units(est, share / (MIN_CALLS * e)) or lo))

        sizes = {id(c): per_call(c) for c in cands}

        def run(group: list[Pilot], units: int):
            (pilot,) = group  # (no shared draws: each surrogate call is its own)
            size = sizes[id(pilot.estimator)]
            t0 = time.process_time()
            rows = []
            for _ in range(max(1, units // size)):
                _, s = pilot.estimator.surrogate(evaluator, dist, size, context=context)
                gs = (
                    torch.autograd.grad(s, inputs, allow_unused=True, retain_graph=True)
                    if inputs
                    else ()
                )
                flat = [(g if g is not None else torch.zeros_like(t)).reshape(-1)
                        for g, t in zip(gs, inputs)]  # fmt: skip
                rows.append(torch.cat(flat) if flat else torch.zeros(1))
            return [(torch.stack(rows), size, time.process_time() - t0)]  # all its own work

        report, _, _ = self._choose(
            cands, skipped, dist, budget, lambda est: whole_units(est, n / self._evals(est, dist)), run,
            evaluator,
            row_units=lambda est: sizes[id(est)],
        )  # fmt: skip
        self._choice = by_label(cands, report.choice)
        self._pilots += 1
        self._calls = 0
        self._pilot_evals += evaluator.n_evals - start
        self._total_evals += evaluator.n_evals - start
        report.pilot_seconds = time.process_time() - t0
        report.revisits = self._pilots - 1
        self.report = report

    # -- state --------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        from ...core.state import snapshot

        chosen = self._choice
        return snapshot({
            "choice": repr(chosen) if chosen is not None else None,
            "chosen_state": chosen.state_dict() if chosen is not None else {},
            "calls": self._calls, "pilots": self._pilots, "probed": self._probed,
            "grad_calls": self._grad_calls, "grad_pilots": self._grad_pilots,
            "served_evals": self._served_evals,
            "pilot_report": self._pilot_report.as_state() if self._pilot_report else None,
            "pilot_evals": self._pilot_evals, "total_evals": self._total_evals,
        })  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        self._calls, self._pilots = int(state["calls"]), int(state["pilots"])
        self._grad_calls = int(state.get("grad_calls", 0))
        self._grad_pilots = int(state.get("grad_pilots", 0))
        self._served_evals = int(state.get("served_evals", 0))
        saved = state.get("pilot_report")
        self._pilot_report = AutoReport.from_state(saved) if saved else None
        self._grad_problem = RESTORED if saved else None
        self._probed = state["probed"]
        self._pilot_evals, self._total_evals = int(state["pilot_evals"]), int(state["total_evals"])
        self._choice = None
        if state["choice"] is not None:
            self._choice = by_label(self._pool()[0], state["choice"])
            self._choice.load_state_dict(state["chosen_state"])

    def __repr__(self) -> str:
        defaults = Auto.__init__.__defaults__
        names = ("allow_biased", "cost", "pilot_share", "differentiable", "candidates",
                 "revisit_every", "z", "tolerance")  # fmt: skip
        parts = [
            f"{k}={getattr(self, k)!r}" for k, d in zip(names, defaults) if getattr(self, k) != d
        ]
        return f"Auto({', '.join(parts)})"
