"""Does estimator="auto" choose well? Auto's variance × cost against the best candidate in hindsight.

For each problem (continuous and discrete families, smooth and discontinuous f, cheap and costly f,
small and large n) every candidate Auto could choose is run *alone* on Auto's budget, n evaluations
of f (n / its evaluations per unit units: a measure-valued unit on a 2-parameter Normal costs 5;
given n units it would spread its per-call overhead over 5 n evaluations), REPEATS times after one
warm-up run; its variance is the mean over repeats of tr(stderr²) (an unbiased
estimate of the estimate's variance, far less noisy than the spread of a few means), its cost the
least CPU time of a run (``time.process_time``, one thread: load only ever adds time), or its
evaluations of f for the problems marked "evals" (f is the expensive part; Auto is then told
``cost="evals"``). Auto is measured exactly as the candidates are, with the same n, its pilot and
race included in its cost. Columns:

* ratio = Auto's variance × cost / the best candidate's  (target: ≤ 1.5 in ≥ 90% of problems)
* vs SF = Auto's variance × cost / the plain score function's  (target: never worse; with the pilot
  counted, a pick of SF itself costs 1/(1 - pilot share), so "not worse" is vs SF ≤ 1.1)
* raced = the share of Auto's evaluations in its counted race (part of the estimate, not pilot)
* pilot = the pilot's share of Auto's evaluations of f (target ≤ 10%) and of its CPU time.

A second table runs estimate_grad as a loop does (``--loop-calls`` calls of one prepared
estimate at fixed parameters, n = 10⁴ per call, cheap f, CPU time): one ``Auto`` whose pilot at the
first call serves them all, against each candidate alone in the same loop; variance × cost is the
mean tr(stderr²) of a call × the loop's CPU time, the pilot included.

A third table runs the expectation door as a training loop does (``--calls`` calls at fixed
parameters, one ``Auto(cost="evals")`` whose pilot serves them all): the variance of the per-call
gradient over the calls × evaluations per call, the pilot's included, against each candidate
alone in the same loop.

    nice .venv/bin/python benchmarks/auto_choice.py [--repeats 8] [--calls 200] [--loop-calls 100]
        [--quick]
"""

from __future__ import annotations

import argparse
import functools
import math
import statistics
import time

import torch
import torch.distributions as D

import scoregrad as sg
from scoregrad import problems as P
from scoregrad.core.evaluate import Evaluator
from scoregrad.estimators.auto.pilot import whole_units

try:
    from _common import write_results
except ImportError:  # run as a module
    from benchmarks._common import write_results


def _normal(mu, log_sigma):
    return D.Normal(mu, log_sigma.exp())


def _step(x, k):
    return (x > k).to(x.dtype)


def _step_value(mu, log_sigma, k):
    return torch.special.ndtr((mu - k) / log_sigma.exp())


def normal_step(k: float = 1.5) -> P.Problem:
    """A discontinuous f: E 1{x > k} = Φ((μ - k)/σ) (pathwise refuses: f' = 0 everywhere)."""
    return P.Problem(
        "normal_step", _normal,
        {"mu": torch.tensor(1.0), "log_sigma": torch.tensor(0.0)},
        functools.partial(_step, k=k), functools.partial(_step_value, k=k),
        f"1{{x > {k}}}, x ~ N(μ, σ²)",
    )  # fmt: skip


def _costly(x, inner, depth=60):
    """An f that costs real CPU per sample: a fixed-point iteration before the catalogue's f."""
    z = x.to(torch.float64).reshape(x.shape[0], -1)
    acc = torch.zeros(z.shape[0], dtype=torch.float64)
    for _ in range(depth):
        acc = torch.tanh(acc + 0.01 * z.sum(1))
    return inner(x) + 0.0 * acc


def costly(prob: P.Problem) -> P.Problem:
    return P.Problem(
        prob.name + "_costly", prob.dist_fn, prob.defaults,
        functools.partial(_costly, inner=prob.f), prob.exact_value,
        prob.description + " (costly f)", prob.discrete,
    )  # fmt: skip


#: (label, problem, n, cost): the spread the targets are checked on
def cases(quick: bool = False):
    L, M, S = 200_000, 50_000, 2_000  # large, medium, small n
    bern3 = lambda: P.bernoulli_toy(0.45, (0.2, -0.4, 0.6))  # noqa: E731
    out = [
        # cheap f, CPU time: n large enough that the run outlasts a few pilot calls
        ("normal_square k=3", P.normal_square(k=3.0), L, "time"),
        ("normal_square k=0", P.normal_square(k=0.0), M, "time"),
        ("normal_cosine k=1", P.normal_cosine(k=1.0), L, "time"),
        ("normal_cosine k=3", P.normal_cosine(k=3.0), L, "time"),
        ("normal_bump k=1", P.normal_gaussian_bump(k=1.0), M, "time"),
        ("normal_step (discontinuous)", normal_step(), L, "time"),
        ("mvn_quadratic d=3", P.mvn_quadratic(3), M, "time"),
        ("gamma x+log x", P.gamma_x_log_x(), M, "time"),
        ("beta x²", P.beta_square(), M, "time"),
        ("exponential (x-1)²", P.exponential_square(), L, "time"),
        ("poisson polynomial", P.poisson_polynomial(), L, "time"),
        ("bernoulli_toy t=0.499", P.bernoulli_toy(), L, "time"),
        ("bernoulli_toy t=0.45 d=4", P.bernoulli_toy(0.45, (0.2, -0.4, 0.6, 0.1)), M, "time"),
        ("categorical_table", P.categorical_table(), L, "time"),
        ("onehot_table", P.onehot_table(), M, "time"),
        ("categorical_batch", P.categorical_batch(), L, "time"),
        ("categorical_bernoulli_toy", P.categorical_bernoulli_toy(), M, "time"),
        # costly f (evaluations are the cost), small and medium n
        ("normal_cosine costly f", costly(P.normal_cosine(k=2.0)), M, "evals"),
        ("normal_square costly f, small n", costly(P.normal_square(k=0.0)), S, "evals"),
        ("normal_step costly f, small n", costly(normal_step()), S, "evals"),
        ("exponential costly f", costly(P.exponential_square()), M, "evals"),
        ("bernoulli_toy costly f, small n", costly(bern3()), S, "evals"),
        ("categorical_table costly f", costly(P.categorical_table()), M, "evals"),
        ("categorical_batch costly f, small n", costly(P.categorical_batch()), S, "evals"),
        ("poisson costly f, small n", costly(P.poisson_polynomial()), S, "evals"),
    ]
    overhead = [  # cheap f at small n: the whole run takes about as long as a few pilot calls
        ("normal_square k=3, cheap f, small n", P.normal_square(k=3.0), S, "time"),
        ("bernoulli_toy, cheap f, small n", bern3(), S, "time"),
        ("normal_step, cheap f, small n", normal_step(), S, "time"),
    ]
    out = [(*c, False) for c in out] + [(*c, True) for c in overhead]
    return out[::4] if quick else out


def units_for(prob, params, est, evals: int) -> int:
    """The units of ``est`` that spend ``evals`` evaluations of f: every estimator gets Auto's
    budget (Auto's unit is an evaluation; a call's per-call overhead is shared by fewer
    evaluations in a smaller run, so budgets must match for a fair time)."""
    units = whole_units(est, evals / est.evals_per_unit(prob.dist_fn(**params)))
    if units is None:
        raise sg.SampleSizeError(f"{evals} evaluations are too few for {est!r}")
    return units


def _run(prob, params, est, n, seed):
    n = units_for(prob, params, est, n)
    t0 = time.process_time()
    out = sg.estimate_grad(prob.f, prob.dist_fn, params, n=n, estimator=est, seed=seed)
    return out, time.process_time() - t0


#: an estimate whose relative standard error at the budget n is below 1e-5 (variance below this
#: share of |∇E f|²) is exact: what is left is the rounding of exact estimators (DisARM, the
#: measure-valued one and antithetic pairs on one Bernoulli all give f(1) - f(0) up to ~1e-12), and
#: their work is compared by cost alone, as Auto's pilot does
EXACT = 1e-10


def _variance(out) -> float:
    return sum(float((s.double() ** 2).sum()) for s in out.stderr.values())


def _measure(prob, params, make, n, repeats, cost, seed0):
    """(variance, cost, work, evals) of one estimator alone at budget n.

    Variance: the mean over repeats of tr(stderr²) (unbiased for the estimate's variance, far less
    noisy than the spread of a few means). Cost: evaluations of f, or the *least* CPU time of the
    repeats after one warm-up call (machine load only ever adds time, so the least is the most
    faithful figure of what the estimator costs). An exact estimator's variance is floored at
    ``EXACT`` |∇E f|² at the budget n, scaled by n / its evaluations so that variance × evaluations
    stays independent of how many evaluations a unit takes."""
    _run(prob, params, make(), n, seed0 - 1)  # warm-up: first-call costs are not the estimator's
    variances, costs, evals = [], [], 0
    for r in range(repeats):
        out, secs = _run(prob, params, make(), n, seed0 + r)
        variances.append(_variance(out))
        costs.append(float(out.n_evals) if cost == "evals" else secs)
        evals = out.n_evals
    _, exact = prob.exact(params)
    floor = EXACT * sum(float((g.double() ** 2).sum()) for g in exact.values()) * n / evals
    var = max(statistics.fmean(variances), floor)
    c = min(costs)
    return var, c, var * c, evals


def _auto(prob, params, n, repeats, cost, seed0):
    """Auto measured exactly as every candidate is (``_measure``: its variance, its least CPU time
    over the repeats, pilot and race included), with the reports of its repeats."""
    reports = []

    def make():
        auto = sg.Auto(cost=cost)
        reports.append(auto)
        return auto

    var, c, work, _ = _measure(prob, params, make, n, repeats, cost, seed0)
    return var, c, work, [a.report for a in reports[1:]]  # (the first is the warm-up)


def candidates(prob, params, cost):
    """The candidates Auto itself would consider for this problem (same declarations, same probe),
    and those it leaves out because another Rao-Blackwellises them."""
    auto = sg.Auto(cost=cost)
    dist = prob.dist_fn(**params)
    ev = Evaluator(prob.f, dtype=torch.float64)
    fit, _ = auto._options(
        dist, "estimate_grad", auto._f_differentiable(ev, dist), dominated=True
    )  # the hindsight table holds every estimator
    return fit


# --- estimate_grad in a loop: one prepared estimate, one pilot serving its calls --------------------


def loop_cases():
    """(label, problem, n per call): cheap f, CPU time, where a one-shot call's pilot costs most."""
    return [
        ("normal_square k=0", P.normal_square(k=0.0), 10_000),
        ("normal_cosine k=3", P.normal_cosine(k=3.0), 10_000),
        ("normal_step (discontinuous)", normal_step(), 10_000),
        ("poisson polynomial", P.poisson_polynomial(), 10_000),
        ("bernoulli_toy t=0.45 d=4", P.bernoulli_toy(0.45, (0.2, -0.4, 0.6, 0.1)), 10_000),
        ("categorical_table", P.categorical_table(), 10_000),
    ]


def _prepared_loop(prob, params, est, n, calls):
    """(mean tr(stderr²) per call, CPU seconds of the loop, the last call's estimate) over
    ``calls`` calls of one prepared estimate at fixed parameters (seeds 0..calls-1)."""
    grad_of = sg.prepare(
        prob.f, prob.dist_fn, params, n=units_for(prob, params, est, n), estimator=est
    )
    grad_of(params, seed=10**6)  # warm-up: first-call costs are not the estimator's
    if isinstance(est, sg.Auto):  # (the warm-up ran a pilot: start the loop with a fresh one)
        grad_of = sg.prepare(prob.f, prob.dist_fn, params, n=n, estimator=sg.Auto(cost="time"))
    variances, t0 = [], time.process_time()
    for s in range(calls):
        out = grad_of(params, seed=s)
        variances.append(_variance(out))
    return statistics.fmean(variances), time.process_time() - t0, out


def loop_rows(calls: int):
    """Auto in a prepared loop against each candidate alone in the same loop: mean variance of a
    call × CPU time of the loop (the pilot's time included), and the pilot's shares."""
    out = []
    for label, prob, n in loop_cases():
        params = prob.params(torch.float64)
        _, exact = prob.exact(params)
        floor = EXACT * sum(float((g.double() ** 2).sum()) for g in exact.values())

        def work(est):  # an exact estimator's variance floored as in _measure
            v, t, last = _prepared_loop(prob, params, est, n, calls)
            return max(v, floor * n / last.n_evals), t, last

        table = {}
        for est in candidates(prob, params, "time"):
            try:
                v, t, _ = work(est)
            except sg.ScoregradError as e:
                print(f"  loop {label}: {est!r} refused: {str(e)[:80]}")
                continue
            table[repr(est)] = (v, t, v * t)
        v, t, last = work(sg.Auto(cost="time"))
        best = min(table, key=lambda k: table[k][2])
        sf = table.get("ScoreFunction(NoBaseline())")
        rep = last.auto
        out.append({
            "problem": label, "n": n, "calls": calls, "best": best, "auto_pick": rep.choice,
            "ratio": v * t / table[best][2], "vs_sf": v * t / sf[2] if sf else math.nan,
            "pilot_share": rep.pilot_share, "pilot_time_share": rep.pilot_seconds / t,
            "served": rep.calls,
        })  # fmt: skip
        r = out[-1]
        print(f"loop {label:<28} best {best:<45} auto {r['auto_pick']:<45} ratio {r['ratio']:5.2f} "
              f"vs SF {r['vs_sf']:5.2f} pilot {100 * r['pilot_share']:.2f}% of evals, "
              f"{100 * r['pilot_time_share']:.1f}% of time", flush=True)  # fmt: skip
    return out


# --- the expectation door: a training loop at fixed parameters ------------------------------------


def expectation_cases():
    """(label, problem, n per call): Auto in ``expectation``, one pilot serving the loop."""
    return [
        ("normal_square k=3", P.normal_square(k=3.0), 64),
        ("normal_cosine k=3", P.normal_cosine(k=3.0), 64),
        ("bernoulli_toy t=0.49", P.bernoulli_toy(0.49, (0.2, -0.4, 0.6)), 16),
        ("categorical_table", P.categorical_table(), 64),
        ("exponential (x-1)²", P.exponential_square(), 64),
    ]


def _loop(prob, params, est, n, calls):
    """(variance of the per-call gradient, evaluations of f per call) over ``calls`` calls of the
    expectation door with ``est`` at fixed parameters (seeds 0..calls-1, every pilot counted)."""
    evals = [0]

    def f(x):
        evals[0] += x.shape[0]
        return prob.f(x)

    leaves = list(params.values())
    rows = []
    for s in range(calls):
        loss = sg.expectation(f, prob.dist_fn(**params), n=n, estimator=est, seed=s)
        rows.append(torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, leaves)]))
    g = torch.stack(rows).double()
    # an exact estimator's variance is rounding: floored at EXACT |g|² per n evaluations, as in
    # _measure (so that variance × evaluations does not depend on how many a call spends)
    per_call = evals[0] / calls
    floor = EXACT * float((g.mean(0) ** 2).sum()) * n / per_call
    return max(float(g.var(0).sum()), floor), per_call


def expectation_rows(calls: int):
    """Auto(cost="evals") against each candidate alone in a loop of ``calls`` calls: variance ×
    evaluations per call (the pilot's evaluations spread over the calls it serves)."""
    out = []
    for label, prob, n in expectation_cases():
        params = {k: v.requires_grad_() for k, v in prob.params(torch.float64).items()}
        auto = sg.Auto(cost="evals", revisit_every=calls)
        dist = prob.dist_fn(**params)
        fit, _ = auto._options(dist, "expectation", auto._f_differentiable(Evaluator(prob.f), dist))
        table = {}
        for est in fit:
            try:
                v, e = _loop(prob, params, est, n, calls)
            except sg.ScoregradError as err:
                print(f"  {label}: {est!r} refused: {str(err)[:80]}")
                continue
            table[repr(est)] = (v, e, v * e)
        v, e = _loop(prob, params, auto, n, calls)
        best = min(table, key=lambda k: table[k][2])
        sf = table.get("ScoreFunction(NoBaseline())")
        out.append({
            "problem": label, "n": n, "calls": calls, "best": best, "auto_pick": auto.report.choice,
            "ratio": v * e / table[best][2], "vs_sf": v * e / sf[2] if sf else math.nan,
            "pilot_share": auto.report.pilot_share,
            "candidates": {k: {"variance": a, "evals": b, "work": c} for k, (a, b, c) in table.items()},
        })  # fmt: skip
        r = out[-1]
        print(f"expectation {label:<24} best {best:<40} auto {r['auto_pick']:<40} ratio "
              f"{r['ratio']:5.2f} vs SF {r['vs_sf']:5.2f} pilot {100 * r['pilot_share']:.1f}%",
              flush=True)  # fmt: skip
    return out


def _md_table(header: list[str], rows: list[list]) -> list[str]:
    """The lines of a markdown table: the header, its rule, one line per row of cells."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(str(c) for c in row) + " |" for row in rows
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--calls", type=int, default=200, help="calls per expectation-door loop")
    ap.add_argument(
        "--loop-calls", type=int, default=100, help="calls per prepared estimate_grad loop"
    )
    ap.add_argument(
        "--only", nargs="*", default=None, help="problems whose label contains one of these"
    )
    args = ap.parse_args()
    torch.set_num_threads(1)  # this process is the benchmark's own: one thread for steady times
    rows = []
    for label, prob, n, cost, overhead in cases(args.quick):
        if args.only and not any(w in label for w in args.only):
            continue
        params = prob.params(torch.float64)
        table = {}
        for est in candidates(prob, params, cost):
            try:
                table[repr(est)] = _measure(
                    prob, params, lambda e=est: e, n, args.repeats, cost, 1000
                )
            except sg.ScoregradError as e:  # e.g. pathwise refused on a step function
                print(f"  {label}: {est!r} refused: {str(e)[:80]}")
        var_a, cost_a, work_a, reports = _auto(prob, params, n, args.repeats, cost, 1000)
        picks = [r.choice for r in reports]
        share = max(r.pilot_share for r in reports)
        # the pilot's CPU time against the least run's, as the candidates' times are taken
        time_share = min(r.pilot_seconds for r in reports) / cost_a if cost == "time" else math.nan
        raced = statistics.fmean(sum(e for _, e in r.race) / r.total_evals for r in reports)
        best = min(table, key=lambda k: table[k][2])
        sf = table.get("ScoreFunction(NoBaseline())")
        w_best = table[best][2]
        ratio = work_a / w_best
        vs_sf = work_a / sf[2] if sf else math.nan
        common = statistics.mode(picks)
        rows.append({
            "problem": label, "n": n, "cost": cost, "best": best, "best_work": w_best,
            "auto_pick": common, "picks": {p: picks.count(p) for p in set(picks)},
            "auto_work": work_a, "ratio": ratio, "vs_sf": vs_sf, "raced": raced, "pilot_share": share,
            "pilot_time_share": time_share, "overhead_regime": overhead,
            "candidates": {k: {"variance": v[0], "cost": v[1], "work": v[2]} for k, v in table.items()},
        })  # fmt: skip
        print(f"{label:<30} best {best:<45} auto {common:<45} ratio {ratio:6.2f} vs SF {vs_sf:6.2f} "
              f"pilot {100 * share:4.1f}% ({100 * time_share:.0f}% of time)", flush=True)  # fmt: skip
    main_rows = [r for r in rows if not r["overhead_regime"]]

    def rates(rs):
        return (
            sum(r["ratio"] <= 1.5 for r in rs) / len(rs),
            sum(not (r["vs_sf"] > 1.1) for r in rs) / len(rs),
            sum(not (r["vs_sf"] > 1.0) for r in rs) / len(rs),
        )

    within, not_worse, strict = rates(main_rows)
    all_within, all_not_worse, _ = rates(rows)
    pilot_ok = all(r["pilot_share"] <= 0.1 for r in rows)
    lines = _md_table(
        ["problem", "n", "cost", "best in hindsight", "Auto's pick (of repeats)", "ratio", "vs SF",
         "raced", "pilot evals", "pilot time"],
        [[r["problem"], r["n"], r["cost"], r["best"],
          ", ".join(f"{k} ×{v}" for k, v in sorted(r["picks"].items(), key=lambda kv: -kv[1])),
          f"{r['ratio']:.2f}", f"{r['vs_sf']:.2f}", f"{100 * r['raced']:.0f}%",
          f"{100 * r['pilot_share']:.1f}%", f"{100 * r['pilot_time_share']:.0f}%"] for r in rows],
    )  # fmt: skip
    summary = (
        f"\nwithin 1.5× of the best in hindsight: {100 * within:.0f}% (target ≥ 90%); "
        f"not worse than plain SF (vs SF ≤ 1.1, pilot counted): {100 * not_worse:.0f}% "
        f"(≤ 1.0: {100 * strict:.0f}%; target 100%); pilot ≤ 10% of evaluations in every case: "
        f"{pilot_ok}. {args.repeats} repeats per estimator. With the cheap-f small-n cases (last "
        f"rows: a run lasts about as long as a few pilot calls) included: {100 * all_within:.0f}% "
        f"within 1.5×, {100 * all_not_worse:.0f}% not worse than SF."
    )
    loops = loop_rows(args.loop_calls if not args.quick else 20)
    loop_lines = ["\n### estimate_grad in a loop (one prepared estimate, cost = CPU time)\n"]
    loop_lines += _md_table(
        ["problem", "n per call", "calls", "best alone", "Auto's pick", "ratio", "vs SF",
         "pilot evals", "pilot time"],
        [[r["problem"], r["n"], r["calls"], r["best"], r["auto_pick"], f"{r['ratio']:.2f}",
          f"{r['vs_sf']:.2f}", f"{100 * r['pilot_share']:.2f}%",
          f"{100 * r['pilot_time_share']:.1f}%"] for r in loops],
    )  # fmt: skip
    loop_within = sum(r["ratio"] <= 1.5 for r in loops) / len(loops)
    loop_lines.append(
        f"\nprepared loop: {100 * loop_within:.0f}% within 1.5× of the best candidate alone; "
        f"pilot ≤ 10% of the loop's CPU time in "
        f"{sum(r['pilot_time_share'] <= 0.1 for r in loops)} of {len(loops)} problems."
    )
    exp_rows = expectation_rows(args.calls if not args.quick else 50)
    exp_lines = ["\n### The expectation door (a loop at fixed parameters, cost = evaluations)\n"]
    exp_lines += _md_table(
        ["problem", "n per call", "best alone", "Auto's pick", "ratio", "vs SF", "pilot evals"],
        [[r["problem"], r["n"], r["best"], r["auto_pick"], f"{r['ratio']:.2f}",
          f"{r['vs_sf']:.2f}", f"{100 * r['pilot_share']:.1f}%"] for r in exp_rows],
    )  # fmt: skip
    exp_within = sum(r["ratio"] <= 1.5 for r in exp_rows) / len(exp_rows)
    exp_lines.append(
        f"\nexpectation door: {100 * exp_within:.0f}% within 1.5× of the best candidate alone, "
        f"{args.calls} calls each; variance is that of the per-call gradient over the calls."
    )
    md = "\n".join(lines) + "\n" + summary + "\n" + "\n".join(loop_lines) + "\n"
    md += "\n".join(exp_lines)
    print(md)
    name = "auto_choice_quick" if args.quick else "auto_choice"
    write_results(name, rows, md, {"within_1_5": within, "not_worse_than_sf": not_worse,
                                   "strictly_not_worse": strict, "pilot_ok": pilot_ok,
                                   "expectation_rows": exp_rows, "loop_rows": loops,
                                   "loop_within_1_5": loop_within,
                                   "expectation_within_1_5": exp_within})  # fmt: skip


if __name__ == "__main__":
    main()
