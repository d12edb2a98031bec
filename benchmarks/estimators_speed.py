"""Time per gradient of every estimator, against the core ScoreFunction in the same run, and side
by side with Pyro and Storchastic where they implement the same estimator.

Part 1 (``estimate_grad``, with standard errors): each estimator on a problem it applies to,
median milliseconds per gradient over repeats, and the ratio to ``ScoreFunction()`` on the same
problem and n. Part 2 (the ``expectation`` door, one surrogate + backward, as in a training loop):

* Pyro 1.9 (``pyro-ppl``, the ``bench`` extra): score function (``TraceGraph_ELBO`` with a
  non-reparameterised guide) and pathwise (``Trace_ELBO``), vectorised particles. Pyro's loss is an
  ELBO, so both sides compute the same objective E_q[f(x) - log p₀(x) + log q(x)].
* Storchastic 0.3.7 (AGPL-3.0: never a dependency; used only if importable, e.g. installed with
  ``pip install --no-deps --target DIR storchastic entmax`` and passed as ``--storchastic DIR``):
  score function, ARM, DisARM, REBAR, RELAX and Gumbel-softmax on b ~ Bernoulli(σ(θ)), θ ∈ R^D,
  f = Σ (b - t)². An estimator that crashes is reported as such.

Writes benchmarks/results/estimators_speed.{json,md}.

    PYTHONPATH=src python benchmarks/estimators_speed.py [--device cuda] [--storchastic DIR]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.distributions as D

import scoregrad as sg
from scoregrad.control_variates import ScoreControlVariate

RESULTS = Path(__file__).parent / "results"
T = 0.499


def timeit(fn, repeats: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# --- part 1: estimate_grad ------------------------------------------------------------------------


def normal_problem(device):
    mu = torch.tensor(1.0, dtype=torch.float32, device=device, requires_grad=True)
    ls = torch.tensor(0.0, dtype=torch.float32, device=device, requires_grad=True)
    return (lambda x: x**2), (lambda mu, ls: D.Normal(mu, ls.exp())), {"mu": mu, "ls": ls}


def bernoulli_problem(device, dim):
    theta = torch.zeros(dim, dtype=torch.float32, device=device, requires_grad=True)

    def f(b):
        return ((b - T) ** 2).sum(-1)

    return f, (lambda theta: D.Bernoulli(logits=theta)), {"theta": theta}


def part1(device, n_normal, n_bern, dim, repeats):
    rows = []
    cases = [
        (f"normal x², n={n_normal}", normal_problem(device), n_normal, {
            "score_function": sg.ScoreFunction(),
            "rloo": sg.RLOO(),
            "optimal_baseline": sg.ScoreFunction(control_variate=ScoreControlVariate()),
            "pathwise": sg.Pathwise(),
            "mvd": sg.MeasureValued(coupling=False),
            "mvd_coupled": sg.MeasureValued(coupling=True),
            "vimco (K=10)": sg.VIMCO(10),
        }),
        (f"bernoulli D={dim}, n={n_bern}", bernoulli_problem(device, dim), n_bern, {
            "score_function": sg.ScoreFunction(),
            "rloo": sg.RLOO(),
            "arm": sg.ARM(),
            "disarm": sg.DisARM(),
            "rebar": sg.REBAR(),
            "relax": sg.RELAX(),
            "gumbel_softmax": sg.GumbelSoftmax(0.5),
            "straight_through": sg.StraightThrough(),
            "mvd": sg.MeasureValued(),
        }),
    ]  # fmt: skip
    for label, (f, dist_fn, params), n, ests in cases:
        base = None
        for name, est in ests.items():
            evals = {}

            def run(est=est, evals=evals, f=f, dist_fn=dist_fn, params=params, n=n):
                e = sg.estimate_grad(f, dist_fn, params, n, est)
                evals["n"] = e.n_evals

            sec = timeit(run, repeats)
            base = sec if name == "score_function" else base
            rows.append({"problem": label, "estimator": name, "ms": 1e3 * sec,
                         "ratio_to_score_function": sec / base, "evals": evals["n"]})  # fmt: skip
    return rows


# --- part 2: the expectation door against Pyro and Storchastic ------------------------------------


BIAS_THETA = (0.0, 0.8, -1.5)


def _theta(dim, device, theta0):
    if theta0 is None:
        return torch.zeros(dim, device=device, requires_grad=True)
    return torch.tensor(theta0, device=device, requires_grad=True)


def bias_z(step, theta, reps: int) -> float:
    """Max |z| of the mean of ``reps`` gradients against the exact RELAX-toy gradient."""
    grads = []
    for _ in range(reps):
        theta.grad = None
        step()
        grads.append(theta.grad.detach().clone())
    g = torch.stack(grads).double()
    p = torch.sigmoid(theta.detach().double())
    exact = p * (1 - p) * (1 - 2 * T)
    return float(((g.mean(0) - exact) / (g.std(0) / reps**0.5)).abs().max())


def ours_expectation(kind, device, n, dim=1, theta0=None, with_theta=False):
    if kind in ("sf_normal", "pathwise_normal"):
        mu = torch.tensor(1.0, device=device, requires_grad=True)
        ls = torch.tensor(0.0, device=device, requires_grad=True)
        prior = D.Normal(torch.tensor(0.0, device=device), torch.tensor(1.0, device=device))
        est = sg.ScoreFunction() if kind == "sf_normal" else sg.Pathwise()

        def step():
            q = D.Normal(mu, ls.exp())
            loss = sg.expectation(lambda x: x**2 - prior.log_prob(x) + q.log_prob(x), q, n, est)
            loss.backward()

        return step
    theta = _theta(dim, device, theta0)
    est = {
        "sf_bernoulli": sg.ScoreFunction(), "arm": sg.ARM(), "disarm": sg.DisARM(),
        "rebar": sg.REBAR(), "relax": sg.RELAX(), "gumbel_softmax": sg.GumbelSoftmax(0.5),
    }[kind]  # fmt: skip
    m = n // 2 if kind in ("arm", "disarm") else n  # equal evaluations of f

    def step():
        loss = sg.expectation(
            lambda b: ((b - T) ** 2).sum(-1), D.Independent(D.Bernoulli(logits=theta), 1), m, est
        )
        loss.backward()

    return (step, theta) if with_theta else step


def pyro_step(kind, device, n):
    import pyro
    import pyro.distributions as pdist
    from pyro.infer import Trace_ELBO, TraceGraph_ELBO

    pyro.clear_param_store()
    mu = torch.tensor(1.0, device=device, requires_grad=True)
    ls = torch.tensor(0.0, device=device, requires_grad=True)

    def model():
        x = pyro.sample("x", pdist.Normal(torch.tensor(0.0, device=device), 1.0))
        pyro.factor("cost", -(x**2))

    def guide():
        d = pdist.Normal(mu, ls.exp())
        if kind == "sf_normal":
            d = d.has_rsample_(False)
        pyro.sample("x", d)

    elbo = (TraceGraph_ELBO if kind == "sf_normal" else Trace_ELBO)(
        num_particles=n, vectorize_particles=True, max_plate_nesting=0
    )

    def step():
        elbo.loss_and_grads(model, guide)

    return step


def storch_step(kind, device, n, dim, theta0=None, with_theta=False):
    import storch
    from storch.method import ARM, REBAR, RELAX, DisARM, GumbelSoftmax, ScoreFunction

    theta = _theta(dim, device, theta0)
    m = n // 2 if kind in ("arm", "disarm") else n
    method = {
        "sf_bernoulli": lambda: ScoreFunction("x", n_samples=m),
        "arm": lambda: ARM("x", n_samples=m),
        "disarm": lambda: DisARM("x", n_samples=m),
        "rebar": lambda: REBAR("x", n_samples=m),
        "relax": lambda: RELAX("x", n_samples=m, in_dim=dim),
        "gumbel_softmax": lambda: GumbelSoftmax("x", n_samples=m),
    }[kind]()

    def step():
        b = method(D.Bernoulli(logits=theta))  # Storchastic rejects Independent wrappers
        storch.add_cost(((b - T) ** 2).sum(-1), "cost")
        storch.backward()

    return (step, theta) if with_theta else step


BIAS_REPS = 400
STORCH_KINDS = ("sf_bernoulli", "arm", "disarm", "rebar", "relax", "gumbel_softmax")


def storch_worker(device, n, dim, repeats) -> dict:
    """Time Storchastic in its own process: importing it patches torch globally."""
    out = {}
    for kind in STORCH_KINDS:
        try:
            out[kind] = timeit(storch_step(kind, device, n, dim), repeats)
        except Exception as e:  # noqa: BLE001 - report a crash of the other library
            out[kind] = f"{type(e).__name__}: {str(e)[:80]}"
        try:
            step, theta = storch_step(kind, device, 100, 3, BIAS_THETA, with_theta=True)
            out[kind + "_bias_z"] = bias_z(step, theta, BIAS_REPS)
        except Exception as e:  # noqa: BLE001
            out[kind + "_bias_z"] = f"{type(e).__name__}"
    return out


def run_storch(folder, device, n, dim, repeats) -> dict | None:
    import subprocess

    cmd = [sys.executable, __file__, "--storch-worker", "--storchastic", str(folder), "--device",
           device, "--n", str(n), "--dim", str(dim), "--repeats", str(repeats)]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        print(f"Storchastic worker failed: {res.stderr[-500:]}")
        return None
    return json.loads(res.stdout.strip().splitlines()[-1])


def part2(device, n, dim, repeats, have_pyro, storch_times):
    rows = []
    for kind in ("sf_normal", "pathwise_normal"):
        ours = timeit(ours_expectation(kind, device, n), repeats)
        row = {"estimator": kind, "n": n, "ours_ms": 1e3 * ours}
        if have_pyro:
            pyro_s = timeit(pyro_step(kind, device, n), repeats)
            row.update(pyro_ms=1e3 * pyro_s, pyro_over_ours=pyro_s / ours)
        rows.append(row)
    for kind in STORCH_KINDS:
        ours = timeit(ours_expectation(kind, device, n, dim), repeats)
        row = {"estimator": f"{kind} (D={dim})", "n": n, "ours_ms": 1e3 * ours}
        torch.manual_seed(0)
        step, theta = ours_expectation(kind, device, 100, 3, BIAS_THETA, with_theta=True)
        row["ours_bias_z"] = bias_z(step, theta, BIAS_REPS)
        if storch_times is not None:
            row["storchastic_bias_z"] = storch_times.get(kind + "_bias_z")
            st = storch_times[kind]
            if isinstance(st, str):
                row["storchastic_error"] = st
            else:
                row.update(storchastic_ms=1e3 * st, storchastic_over_ours=st / ours)
        rows.append(row)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=100)
    ap.add_argument("--storchastic", type=Path, default=None, help="folder holding storchastic")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--storch-worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.storch_worker:
        sys.path.insert(0, str(args.storchastic))
        print(json.dumps(storch_worker(args.device, args.n, args.dim, args.repeats)))
        return
    try:
        import pyro  # noqa: F401

        have_pyro = True
    except ImportError:
        have_pyro = False
    n2 = max(1, args.n // 10)
    storch_times = None
    if args.storchastic is not None:
        storch_times = run_storch(args.storchastic, args.device, n2, args.dim, args.repeats)
    have_storch = storch_times is not None
    p1 = part1(args.device, args.n, max(1, args.n // 10), args.dim, args.repeats)
    p2 = part2(args.device, n2, args.dim, args.repeats, have_pyro, storch_times)
    lines = [
        "# Estimator speed",
        "",
        f"Device {args.device}, one thread, float32, median of {args.repeats} runs.",
        "",
        "## estimate_grad: time per gradient against ScoreFunction in the same run",
        "",
        "| problem | estimator | ms/gradient | × score function | evaluations of f |",
        "|---|---|---|---|---|",
    ]
    for r in p1:
        lines.append(f"| {r['problem']} | {r['estimator']} | {r['ms']:.3g} | "
                     f"{r['ratio_to_score_function']:.2f} | {r['evals']} |")  # fmt: skip
    lines += [
        "",
        "## expectation + backward, side by side (ratio > 1: the other library is slower)",
        "",
        f"Pyro: {'installed' if have_pyro else 'not installed'}; Storchastic: "
        f"{'installed' if have_storch else 'not installed (AGPL, optional: --storchastic DIR)'}.",
        "",
        "| estimator | n | scoregrad ms | Pyro ms | Pyro/ours | Storchastic ms | Storch/ours "
        "| bias max abs z: ours | Storchastic |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in p2:
        st = r.get("storchastic_error")
        lines.append(
            f"| {r['estimator']} | {r['n']} | {r['ours_ms']:.3g} | "
            f"{r['pyro_ms']:.3g} | {r['pyro_over_ours']:.2f} | " if "pyro_ms" in r else
            f"| {r['estimator']} | {r['n']} | {r['ours_ms']:.3g} | — | — | "
        )  # fmt: skip
        if st:
            lines[-1] += f"crashed: {st} | — |"
        elif "storchastic_ms" in r:
            lines[-1] += f"{r['storchastic_ms']:.3g} | {r['storchastic_over_ours']:.2f} |"
        else:
            lines[-1] += "— | — |"
        zo, zs = r.get("ours_bias_z"), r.get("storchastic_bias_z")
        lines[-1] += f" {'—' if zo is None else f'{zo:.1f}'} | "
        lines[-1] += ("—" if zs is None else zs if isinstance(zs, str) else f"{zs:.1f}") + " |"
    lines += [
        "",
        f"Bias: {BIAS_REPS} gradients (n = 100 each, DisARM/ARM 50 pairs) on f = Σ (b - {T})², "
        f"θ = {BIAS_THETA}; max |z| over the 3 components of their mean against the exact "
        "gradient (unbiased: |z| < 4.42 with probability 1 - 3e-5; Gumbel-softmax is biased by "
        "design).",
    ]
    md = "\n".join(lines) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "estimators_speed.md").write_text(md)
    (args.out / "estimators_speed.json").write_text(
        json.dumps({"device": args.device, "estimate_grad": p1, "expectation": p2}, indent=1)
    )
    print(md)


if __name__ == "__main__":
    main()
