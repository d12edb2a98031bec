"""Per-call overhead where users live: prepared and one-shot doors against hand-written floors.

Every row times scoregrad and a hand-written floor of the *same estimator* (same outputs: the
gradient and, for ``estimate_grad`` rows, its standard errors) in the same run, interleaved
round-robin (``_common.time_calls``), and reports floor, ours and their ratio with the issue's
target. Rows (issue #11):

* Normal N(μ, exp(log σ)²) in D dimensions, f = Σ_d (x_d - 1)², score function: n = 16 (D = 1, 10;
  prepared ``estimate_grad``, one-shot ``estimate_grad``, prepared ``expectation`` + backward),
  n = 10⁴ (D = 1, 10) and n = 10⁶ (D = 10; against the closed form and the matrix-vector floor
  f @ score / n).
* Bernoulli toy b ~ Bernoulli(σ(θ)), θ ∈ R^K, f = Σ (b - 0.499)², K = 1 and 3, n = 2, 4, 8:
  score function, leave-one-out, ARM and DisARM (n pairs) by the prepared ``estimate_grad``.
* RELAX and REBAR on the toy (K = 3): against a hand-written RELAX step with the same control
  network (n = 4), and against the score function at n = 1000.
* One SVI step of Bayesian logistic regression (breast cancer, 50 particles, LOO baseline).
* One training step of the binary VAE on MNIST (DisARM, RLOO).
* Greeks: GBM call, price + 5 LR Greeks with standard errors, 10⁴ and 10⁶ float32 paths, against
  the hand-written basis form (``finance_speed.torch_basis``).

    .venv/bin/python benchmarks/overhead.py [--quick] [--sections normal,bernoulli,...]

Writes benchmarks/results/overhead.{md,json}. One thread (torch.set_num_threads(1) in this
script's own process only), float32, CPU unless --device cuda.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch
import torch.distributions as D

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, time_calls, write_results  # noqa: E402
from core_throughput import closed_form, cost, dist_fn, matvec_floor  # noqa: E402

import scoregrad as sg  # noqa: E402

T = 0.499
#: the benchmark's Normal through a declared family: loc = μ, scale = exp(log σ)
NORMAL = sg.Family(D.Normal, unconstrained=True)


def _row(case, floor_s, ours_s, target, floor_name="hand-written", **extra):
    return dict(
        case=case, floor=floor_name, floor_us=floor_s * 1e6, ours_us=ours_s * 1e6,
        ratio=ours_s / floor_s, above_floor_us=(ours_s - floor_s) * 1e6, target=target, **extra,
    )  # fmt: skip


# --- Normal ---------------------------------------------------------------------------------------


def normal_expectation_floor(mu, ls, n):
    """The DiCE surrogate of the score function by hand: mean(f · (log p - stop(log p)) + f)."""
    q = D.Normal(mu, ls.exp(), validate_args=False)
    with torch.no_grad():
        x = q.sample((n,))
    fx = cost(x)
    lp = q.log_prob(x).sum(-1)
    (fx * (1.0 + lp - lp.detach())).mean().backward()


def normal_rows(device, repeats, quick):
    rows = []
    for dim, n in [(1, 16), (10, 16), (1, 10**4), (10, 10**4)] + ([] if quick else [(10, 10**6)]):
        mu = torch.zeros(dim, device=device, requires_grad=True)
        ls = torch.zeros(dim, device=device, requires_grad=True)
        params = {"mu": mu, "log_sigma": ls}
        prepared = sg.prepare(cost, dist_fn, params, n=n)
        family = sg.prepare(cost, NORMAL, {"loc": mu, "scale": ls}, n=n)
        loss_of = sg.prepare_expectation(cost, n=n)
        fns = {
            "floor": lambda: closed_form(mu.detach(), ls.detach(), n),
            "prepared": lambda: prepared(params),
            "family": lambda: family({"loc": mu, "scale": ls}),
        }
        small = n <= 16
        if small:
            fns["one_shot"] = lambda: sg.estimate_grad(cost, dist_fn, params, n=n)
            fns["floor_exp"] = lambda: normal_expectation_floor(mu, ls, n)
            fns["prepared_exp"] = lambda: loss_of(dist_fn(mu, ls)).backward()
        if n >= 10**6:
            fns["matvec"] = lambda: matvec_floor(mu.detach(), ls.detach(), n)
        t = time_calls(fns, repeats=repeats, device=device, min_seconds=0.02 if small else 0.0)
        target = 2.0 if small else (1.5 if n <= 10**4 else 1.1)
        case = f"Normal D={dim} n={n:g}"
        rows.append(_row(f"{case} estimate_grad prepared, sg.Family", t["floor"], t["family"],
                         target, "closed form"))  # fmt: skip
        rows.append(_row(f"{case} estimate_grad prepared, lambda dist_fn", t["floor"],
                         t["prepared"], None, "closed form"))  # fmt: skip
        if small:
            rows.append(_row(f"{case} estimate_grad one-shot", t["floor"], t["one_shot"], None,
                             "closed form"))  # fmt: skip
            rows.append(_row(f"{case} expectation prepared + backward", t["floor_exp"],
                             t["prepared_exp"], 2.0, "hand DiCE + backward"))  # fmt: skip
        if "matvec" in t:
            rows.append(_row(f"{case} estimate_grad prepared, sg.Family", t["matvec"],
                             t["family"], 1.1, "matvec f @ score / n"))  # fmt: skip
    return rows


# --- Bernoulli toy --------------------------------------------------------------------------------


def toy_f(b):
    return ((b - T) ** 2).sum(-1)


def _mean_se(g):
    m = g.shape[0]
    return g.mean(0), g.std(0) / math.sqrt(m)


def toy_floor(kind, theta, n):
    """The estimator by hand: per-unit logit gradients, their mean and standard error."""
    p = torch.sigmoid(theta)
    if kind in ("score_function", "loo"):
        b = torch.bernoulli(p.expand(n, *theta.shape))
        fx = toy_f(b)
        w = (fx - fx.mean()) * (n / (n - 1)) if kind == "loo" else fx
        return _mean_se(w[:, None] * (b - p)), _mean_se(fx)
    u = torch.rand(n, *theta.shape, device=theta.device)
    b, bt = (u < p).float(), (1.0 - u < p).float()
    fx = toy_f(torch.cat([b, bt]))
    fb, fbt = fx[:n], fx[n:]
    if kind == "arm":
        g = (fbt - fb)[:, None] * (u - 0.5)
    else:
        g = 0.5 * (fb - fbt)[:, None] * (1.0 - 2.0 * bt) * (b != bt).float()
        g = g * torch.sigmoid(theta.abs())
    return _mean_se(g), _mean_se(0.5 * (fb + fbt))


TOY_ESTIMATORS = {
    "score_function": lambda: sg.ScoreFunction(),
    "loo": lambda: sg.ScoreFunction(sg.baselines.LeaveOneOut()),
    "arm": lambda: sg.ARM(),
    "disarm": lambda: sg.DisARM(),
}


def bernoulli_rows(device, repeats, quick):
    rows = []
    for k in (1, 3):
        theta = torch.zeros(k, device=device, requires_grad=True)
        for n in (2, 4, 8) if not quick else (4,):
            fns = {}
            for name, make in TOY_ESTIMATORS.items():
                prepared = sg.prepare(toy_f, BERNOULLI, {"logits": theta}, n=n, estimator=make())
                fns[f"{name}_floor"] = lambda name=name: toy_floor(name, theta.detach(), n)
                fns[f"{name}_ours"] = lambda prepared=prepared: prepared({"logits": theta})
            t = time_calls(fns, repeats=repeats, device=device, min_seconds=0.02)
            for name in TOY_ESTIMATORS:
                rows.append(_row(f"Bernoulli K={k} n={n} {name} prepared", t[f"{name}_floor"],
                                 t[f"{name}_ours"], 3.0))  # fmt: skip
    return rows


BERNOULLI = sg.Family(D.Bernoulli)  # Bernoulli(logits=θ)


# --- Greeks ---------------------------------------------------------------------------------------


def greeks_rows(device, repeats, quick):
    from finance_speed import overhead_case

    rows = []
    for r in overhead_case(device, max(1, repeats // 3)):
        target = 2.0 if r["n"] < 10**6 else 1.2
        rows.append(_row(f"Greeks GBM call {r['n']:.0e} float32 paths", r["floor_ms"] / 1e3,
                         r["ours_ms"] / 1e3, target, "torch basis form"))  # fmt: skip
    return rows


SECTIONS = {
    "normal": normal_rows,
    "bernoulli": bernoulli_rows,
    "greeks": greeks_rows,
}


def table(rows) -> str:
    lines = [
        "| case | floor | floor µs | ours µs | ratio | above floor µs | target |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        target = "—" if r["target"] is None else f"≤ {r['target']:g}×"
        ok = "" if r["target"] is None or r["ratio"] <= r["target"] else " ✗"
        lines.append(
            f"| {r['case']} | {r['floor']} | {r['floor_us']:.1f} | {r['ours_us']:.1f} | "
            f"{r['ratio']:.2f}×{ok} | {r['above_floor_us']:.1f} | {target} |"
        )
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--quick", action="store_true", help="fewer rows and repeats")
    ap.add_argument("--sections", default=",".join(SECTIONS))
    ap.add_argument("--tag", default="")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    device = torch.device(args.device)
    repeats = 5 if args.quick else args.repeats
    rows = []
    for name in args.sections.split(","):
        new = SECTIONS[name](device, repeats, args.quick)
        print(table(new), flush=True)
        rows += new
    head = (
        f"# Overhead: scoregrad against hand-written floors ({args.device}, float32, one thread)\n\n"
        f"{machine()}; median over {repeats} interleaved rounds.\n\n"
        "    .venv/bin/python benchmarks/overhead.py " + " ".join(argv or sys.argv[1:]) + "\n\n"
    )
    name = "overhead" + (f"_{args.tag}" if args.tag else "")
    path = write_results(name, rows, head + table(rows), extra={"args": vars(args)})
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
