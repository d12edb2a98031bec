"""scoregrad.graphs side by side with Pyro's TraceGraph_ELBO on the same two-layer discrete model.

The model is a two-layer sigmoid belief net, p(z2) p(z1 | z2) p(x | z1), with the guide
q(z1 | x) q(z2 | z1); both latent layers are Bernoulli, so every encoder gradient comes from the
score function. Both libraries see the same modules, the same minibatch (a plate over data points)
and the same number of particles (Pyro vectorised). Per setting:

* mean gradient: per encoder weight, z = (mean_sg - mean_pyro) / sqrt(se_sg² + se_pyro²) over R
  independent draws each; reported max |z| and the mean of z² (≈ 1 when the means agree);
* variance: total per-draw variance of each encoder layer's gradient, scoregrad (LeaveOneOut per
  choice, a moving average per choice as Pyro's decaying average, and DisARM) against Pyro with no
  baseline and with its decaying-average baseline (stateful baselines warmed up alike at the fixed
  parameters), the best of Pyro's taken as reference;
* time per step (surrogate + backward, interleaved): ratios to a hand-written floor, plain torch
  code building the same Rao-Blackwellised DiCE loss in the same process.

Pyro does not monkey-patch torch, so both run in one process.

    PYTHONPATH=src python benchmarks/graphs_vs_pyro.py [--repeats 200] [--mnist]

Writes benchmarks/results/graphs_vs_pyro.{json,md}.
"""

from __future__ import annotations

import argparse
import math

import pyro
import pyro.distributions as pdist
import torch
import torch.distributions as D
from _common import MNIST, time_calls, write_results  # noqa: I001
from pyro.infer import TraceGraph_ELBO
from torch import nn

import scoregrad as sg
from scoregrad.baselines import LeaveOneOut, MovingAverage
from scoregrad.dice import magic_box


class SBN2(nn.Module):
    """Encoders enc1: x -> z1, enc2: z1 -> z2; decoders dec2: z2 -> z1, dec1: z1 -> x; prior."""

    def __init__(self, x_dim, h1, h2):
        super().__init__()
        self.enc1, self.enc2 = nn.Linear(x_dim, h1), nn.Linear(h1, h2)
        self.dec2, self.dec1 = nn.Linear(h2, h1), nn.Linear(h1, x_dim)
        self.prior = nn.Parameter(torch.zeros(h2))


def graph_model(m: SBN2, x, est1, est2):
    """The negative ELBO as a graph: each cost right after the choices it depends on."""

    def model(g):
        data = g.plate("data", x.shape[0])
        q1 = D.Bernoulli(logits=m.enc1(x))
        z1 = g.sample("z1", q1, est1, plates=data)
        g.cost("x", -D.Bernoulli(logits=m.dec1(z1)).log_prob(x).sum(-1), plates=data)
        g.cost("q1", g.log_prob("z1"), plates=data)
        q2 = D.Bernoulli(logits=m.enc2(z1))
        z2 = g.sample("z2", q2, est2, plates=data, expand=False)  # built from z1: no probe
        lp = D.Bernoulli(logits=m.dec2(z2)).log_prob(z1).sum(-1)
        lp = lp + D.Bernoulli(logits=m.prior).log_prob(z2).sum(-1)
        g.cost("z", g.log_prob("z2") - lp, plates=data)

    return model


def pyro_pair(m: SBN2, x, baseline: dict | None):
    b = x.shape[0]

    def model():
        pyro.module("sbn", m)
        with pyro.plate("data", b, dim=-1):
            z2 = pyro.sample("z2", pdist.Bernoulli(logits=m.prior.expand(b, -1)).to_event(1))
            z1 = pyro.sample("z1", pdist.Bernoulli(logits=m.dec2(z2)).to_event(1))
            pyro.sample("x", pdist.Bernoulli(logits=m.dec1(z1)).to_event(1), obs=x)

    def guide():
        pyro.module("sbn", m)
        infer = {"baseline": baseline} if baseline else {}
        with pyro.plate("data", b, dim=-1):
            z1 = pyro.sample("z1", pdist.Bernoulli(logits=m.enc1(x)).to_event(1), infer=infer)
            pyro.sample("z2", pdist.Bernoulli(logits=m.enc2(z1)).to_event(1), infer=infer)

    return model, guide


def floor_loss(m: SBN2, x, n):
    """Hand-written DiCE loss with the same causal structure and LOO baselines (plain torch)."""
    q1 = D.Bernoulli(logits=m.enc1(x))
    z1 = q1.sample((n,))
    lq1 = q1.log_prob(z1).sum(-1)
    c1 = -D.Bernoulli(logits=m.dec1(z1)).log_prob(x).sum(-1) + lq1.detach()
    q2 = D.Bernoulli(logits=m.enc2(z1))
    z2 = q2.sample()
    lq2 = q2.log_prob(z2).sum(-1)
    lp = D.Bernoulli(logits=m.dec2(z2)).log_prob(z1).sum(-1)
    c2 = lq2.detach() - lp - D.Bernoulli(logits=m.prior).log_prob(z2).sum(-1)
    box1, box2 = magic_box(lq1), magic_box(lq1 + lq2)
    d1, d2 = (c1 + c2).detach(), c2.detach()
    b1, b2 = (d1.sum(0) - d1) / (n - 1), (d2.sum(0) - d2) / (n - 1)
    loss = box1 * c1 + box2 * c2 + (1 - magic_box(lq1)) * b1 + (1 - magic_box(lq2)) * b2
    return loss.sum(-1).mean(0)


def _encoder_grads(m):
    return torch.cat([m.enc1.weight.grad.flatten(), m.enc2.weight.grad.flatten()])


def draws(step, m, repeats):
    rows = []
    for r in range(repeats):
        m.zero_grad()
        step(r)
        rows.append(_encoder_grads(m).clone())
    return torch.stack(rows)


def run_setting(name, x, h1, h2, n, repeats, warmup):
    torch.manual_seed(0)
    m = SBN2(x.shape[1], h1, h2)
    k1 = h1 * x.shape[1]
    loo = lambda: sg.ScoreFunction(LeaveOneOut())  # noqa: E731
    ma = lambda: sg.ScoreFunction(MovingAverage(0.9))  # noqa: E731 - Pyro's decaying average
    ours = {
        "scoregrad LOO": graph_model(m, x, loo(), loo()),
        "scoregrad moving avg": graph_model(m, x, ma(), ma()),
        "scoregrad DisARM": graph_model(m, x, sg.DisARM(), sg.DisARM()),
    }

    def sg_step(model):
        def step(seed):
            sg.graphs.expectation(model, n, seed=seed).backward()

        return step

    elbo = TraceGraph_ELBO(num_particles=n, vectorize_particles=True, max_plate_nesting=1)
    pyro_cfg = {
        "Pyro none": None,
        "Pyro decaying avg": {"use_decaying_avg_baseline": True, "baseline_beta": 0.9},
    }
    pyro_steps = {}
    for label, cfg in pyro_cfg.items():
        pm, pg = pyro_pair(m, x, cfg)

        def step(seed, pm=pm, pg=pg):
            pyro.set_rng_seed(10_000 + seed)
            elbo.loss_and_grads(pm, pg)

        pyro_steps[label] = step
    pyro.clear_param_store()
    results = {}
    for label, model in ours.items():
        for w in range(warmup):  # as for Pyro: stateful baselines settle at these parameters
            m.zero_grad()
            sg_step(model)(-1 - w)
        results[label] = draws(sg_step(model), m, repeats)
    for label, step in pyro_steps.items():
        pyro.clear_param_store()
        for w in range(warmup):  # let the decaying average settle at these parameters
            m.zero_grad()
            step(-1 - w)
        results[label] = draws(step, m, repeats)
    mean = {k: v.mean(0) for k, v in results.items()}
    se = {k: v.std(0) / math.sqrt(repeats) for k, v in results.items()}
    var = {k: (v.var(0)[:k1].sum().item(), v.var(0)[k1:].sum().item()) for k, v in results.items()}
    best = min(pyro_cfg, key=lambda k: sum(var[k]))
    rows = []
    for label in results:
        z = (mean[label] - mean[best]) / (se[label] ** 2 + se[best] ** 2).sqrt().clamp_min(1e-12)
        rows.append(
            {
                "setting": name,
                "method": label,
                "var_enc1": var[label][0],
                "var_enc2": var[label][1],
                "var_ratio_to_best_pyro": sum(var[label]) / sum(var[best]),
                "max_abs_z_vs_best_pyro": float(z.abs().max()) if label != best else 0.0,
                "mean_z2_vs_best_pyro": float((z**2).mean()) if label != best else 1.0,
            }
        )
    fns = {
        "floor (hand-written DiCE)": lambda: floor_loss(m, x, n).backward(),
        "scoregrad LOO": lambda: sg.graphs.expectation(ours["scoregrad LOO"], n).backward(),
        "scoregrad moving avg": lambda: sg.graphs.expectation(ours["scoregrad moving avg"], n).backward(),
        "Pyro none": lambda: elbo.loss_and_grads(*pyro_pair(m, x, None)),
        "Pyro decaying avg": lambda: elbo.loss_and_grads(*pyro_pair(m, x, pyro_cfg["Pyro decaying avg"])),
    }  # fmt: skip
    times = time_calls(fns, repeats=15, device=torch.device("cpu"), min_seconds=0.2)
    floor = times["floor (hand-written DiCE)"]
    for row in rows:
        t = times.get(row["method"])
        row["seconds_per_step"] = t
        row["x_floor"] = None if t is None else t / floor
        row["x_pyro_best"] = None if t is None else t / times[best]
    rows.append(
        {"setting": name, "method": "floor (hand-written DiCE)", "seconds_per_step": floor,
         "x_floor": 1.0, "x_pyro_best": floor / times[best]}
    )  # fmt: skip
    return rows, best


def table(rows):
    head = (
        "| setting | method | var enc1 | var enc2 | var / best Pyro | max abs z | mean z² | "
        "ms/step | x floor | x best Pyro |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head]

    def f(v, fmt):
        return "" if v is None else format(v, fmt)

    for r in rows:
        lines.append(
            f"| {r['setting']} | {r['method']} | {f(r.get('var_enc1'), '.4g')} | "
            f"{f(r.get('var_enc2'), '.4g')} | {f(r.get('var_ratio_to_best_pyro'), '.3f')} | "
            f"{f(r.get('max_abs_z_vs_best_pyro'), '.2f')} | {f(r.get('mean_z2_vs_best_pyro'), '.2f')} | "
            f"{f(1e3 * r['seconds_per_step'] if r.get('seconds_per_step') else None, '.2f')} | "
            f"{f(r.get('x_floor'), '.2f')} | {f(r.get('x_pyro_best'), '.3f')} |"
        )
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--mnist", action="store_true", help="add the 784-200-200 MNIST setting")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: stable timings)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x_small = torch.bernoulli(torch.full((32, 64), 0.3), generator=g)
    rows, _ = run_setting(
        "synthetic 64-16-8, B=32, n=8", x_small, 16, 8, 8, args.repeats, args.warmup
    )
    print(table(rows), flush=True)
    if args.mnist:
        from scoregrad.vi.data import load_dataset

        data = load_dataset(MNIST)
        x = data.train[:50].float()
        more, _ = run_setting(
            "MNIST 784-200-200, B=50, n=4", x, 200, 200, 4, args.repeats // 4, args.warmup
        )
        rows += more
    md = table(rows)
    print(md)
    write_results("graphs_vs_pyro", rows, md, {"repeats": args.repeats})


if __name__ == "__main__":
    main()
