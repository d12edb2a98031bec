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
from _common import MNIST, machine, time_calls, write_results  # noqa: E402
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


# --- RELAX / REBAR --------------------------------------------------------------------------------


class HandRelax:
    """One RELAX (or, with the relaxed f as control and no network, REBAR) estimate by hand:
    z = θ + logit(u), b = 1[z > 0], z̃ ~ p(z | b); ĝ = (f(b) - c(z̃)) ∇log p(b) + ∂c(z)/∂θ - ∂c(z̃)/∂θ
    per sample, its mean and standard error, then one Adam step on mean ‖ĝ‖². ``net`` is a copy
    of the estimator's control network (same initial weights)."""

    def __init__(self, net, relaxed_f: bool, theta, lr=1e-2):
        self.net, self.relaxed_f, self.theta = net, relaxed_f, theta
        self.eta = torch.tensor(1.0, requires_grad=True)
        self.log_temp = torch.tensor(math.log(0.5), requires_grad=True)
        self.phi = ([] if net is None else list(net.parameters())) + (
            [self.eta, self.log_temp] if relaxed_f else []
        )
        self.opt = None
        self.lr = lr

    def _c(self, z):
        c = 0.0 if self.net is None else self.net(z).squeeze(-1)
        if self.relaxed_f:
            c = c + self.eta * toy_f(torch.sigmoid(z / self.log_temp.exp()))
        return c

    def __call__(self, n):
        from scoregrad.estimators.rebar import conditional_logistic

        th = self.theta.detach()
        eps = torch.finfo(th.dtype).eps
        u = torch.rand(n, *th.shape).clamp(eps, 1 - eps)
        v = torch.rand(n, *th.shape).clamp(eps, 1 - eps)
        L = th.expand(n, *th.shape).requires_grad_()
        z = L + torch.logit(u)
        b = (z > 0).float().detach()
        fb = toy_f(b)
        zt = conditional_logistic(L, b, v)
        czt = self._c(zt)
        (dc,) = torch.autograd.grad((self._c(z) - czt).sum(), L, create_graph=True)
        g = (fb - czt)[:, None] * (b - torch.sigmoid(L.detach())) + dc
        if self.opt is None:
            self.opt = torch.optim.Adam(self.phi, lr=self.lr, fused=True)  # as the estimator
        grads = torch.autograd.grad((g**2).sum(1).mean(), self.phi)
        for p, gp in zip(self.phi, grads, strict=True):
            p.grad = gp
        self.opt.step()
        return _mean_se(g.detach()), _mean_se(fb)


def relax_rows(device, repeats, quick):
    import copy

    rows = []
    theta = torch.zeros(3, device=device, requires_grad=True)
    p = {"logits": theta}
    for n in (4, 1000):
        relax, rebar = sg.RELAX(), sg.REBAR()
        ours_relax = sg.prepare(toy_f, BERNOULLI, p, n=n, estimator=relax)
        ours_rebar = sg.prepare(toy_f, BERNOULLI, p, n=n, estimator=rebar)
        ours_relax(p)  # builds the lazy network, so the hand step can copy it
        hand_relax = HandRelax(copy.deepcopy(relax.control.net), False, theta)
        hand_rebar = HandRelax(None, True, theta)
        sf = sg.prepare(toy_f, BERNOULLI, p, n=n)
        t = time_calls({
            "hand_relax": lambda: hand_relax(n), "relax": lambda: ours_relax(p),
            "hand_rebar": lambda: hand_rebar(n), "rebar": lambda: ours_rebar(p),
            "sf": lambda: sf(p),
        }, repeats=repeats, device=device, min_seconds=0.02)  # fmt: skip
        for name in ("relax", "rebar"):
            rows.append(_row(f"Bernoulli K=3 n={n} {name.upper()} prepared", t[f"hand_{name}"],
                             t[name], 10.0, f"hand {name.upper()} step"))  # fmt: skip
            if n == 1000:
                rows.append(_row(f"Bernoulli K=3 n={n} {name.upper()} prepared", t["sf"],
                                 t[name], 5.0, "our score function"))  # fmt: skip
    return rows


# --- variational inference -----------------------------------------------------------------------


def logistic_rows(device, repeats, quick):
    """One SVI step of Bayesian logistic regression (batch 32, 50 particles, LOO baseline)."""
    from scoregrad.vi import MeanFieldNormal
    from scoregrad.vi.elbo import ScoreFunctionELBO
    from scoregrad.vi.models.logistic import LogisticRegression, load_breast_cancer_split

    model = LogisticRegression(load_breast_cancer_split(dtype=torch.float32))
    log_joint = model.minibatch(0)
    n = 50
    guide = MeanFieldNormal(model.dim)
    opt = torch.optim.SGD(guide.parameters(), lr=1e-4)
    elbo = ScoreFunctionELBO(sg.ScoreFunction(sg.baselines.LeaveOneOut()))
    loc = torch.zeros(model.dim, requires_grad=True)
    ls = torch.zeros(model.dim, requires_grad=True)
    hand_opt = torch.optim.SGD([loc, ls], lr=1e-4)

    def ours():
        opt.zero_grad()
        (-elbo(log_joint, guide, n)).backward()
        opt.step()

    def floor():  # the same estimator by hand: LOO-baselined score function, closed-form scores
        sigma = ls.detach().exp()
        eps = torch.randn(n, model.dim)
        z = loc.detach() + sigma * eps
        f = log_joint(z) - D.Normal(loc.detach(), sigma, validate_args=False).log_prob(z).sum(-1)
        w = (f - (f.sum() - f) / (n - 1))[:, None]
        loc.grad = -(w * eps / sigma).mean(0)
        ls.grad = -(w * (eps * eps - 1.0)).mean(0)
        hand_opt.step()

    def surrogate_floor():  # what a user writes: the REINFORCE surrogate and autograd
        hand_opt.zero_grad()
        q = D.Normal(loc, ls.exp(), validate_args=False)
        with torch.no_grad():
            z = q.sample((n,))
        lq = q.log_prob(z).sum(-1)
        f = (log_joint(z) - lq).detach()
        w = f - (f.sum() - f) / (n - 1)
        (-(f.mean() + (w * lq).mean())).backward()
        hand_opt.step()

    t = time_calls({"floor": floor, "surrogate": surrogate_floor, "ours": ours}, repeats=repeats,
                   device=device, min_seconds=0.02)  # fmt: skip
    case = "logistic regression SVI step (50 particles, LOO)"
    return [
        _row(case, t["surrogate"], t["ours"], 1.5, "hand surrogate + backward"),
        _row(case, t["floor"], t["ours"], None, "hand closed-form scores"),
    ]


def vae_rows(device, repeats, quick):
    """One training step of the binary VAE on MNIST (batch 50, 200 latents): DisARM (one pair per
    image) and REINFORCE with a leave-one-out baseline (two samples per image)."""
    import torch.nn.functional as F

    from scoregrad.vi.data import load_dataset
    from scoregrad.vi.models.sbn import BinaryVAE, batch_objective, make_estimator

    data = load_dataset(MNIST)
    x = data.train[:50].to(device)
    rows = []
    for name in ("disarm", "reinforce-loo"):
        model = BinaryVAE(data.dim, 200, train_mean=data.train.mean(0)).to(device)
        hand = BinaryVAE(data.dim, 200, train_mean=data.train.mean(0)).to(device)
        hand.load_state_dict(model.state_dict())
        est, n = make_estimator(name, {"x_dim": data.dim, "init_value": 0.0})
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        hopt = torch.optim.Adam(hand.parameters(), lr=1e-3)

        def ours(model=model, est=est, n=n, opt=opt):
            opt.zero_grad()
            (-batch_objective(model, est, n, x)).backward()
            opt.step()

        def floor(name=name, hand=hand, hopt=hopt):
            hopt.zero_grad()
            a = hand.encoder(x - hand.x_mean)
            p = torch.sigmoid(a.detach())
            if name == "disarm":
                u = torch.rand_like(p)
                b, bt = (u < p).float(), (1.0 - u < p).float()
                z = torch.stack([b, bt])
            else:
                z = torch.bernoulli(p.expand(2, *p.shape))
            ad = a.detach()
            logq_fixed = (z * F.logsigmoid(ad) + (1 - z) * F.logsigmoid(-ad)).sum(-1)
            f = hand.log_joint(x)(z) - logq_fixed  # (2, B), the decoder's graph kept
            if name == "disarm":
                d = (0.5 * (f[0] - f[1])).detach()[:, None]
                g = d * (1.0 - 2.0 * bt) * (b != bt).float() * torch.sigmoid(ad.abs())
                surrogate = 0.5 * (f[0] + f[1]).sum() + (g * a).sum()
            else:
                logq = (z * F.logsigmoid(a) + (1 - z) * F.logsigmoid(-a)).sum(-1)
                w = (f - f.flip(0)).detach()  # leave-one-out baseline of two samples
                surrogate = f.mean(0).sum() + (w * logq).mean(0).sum()
            (-surrogate / x.shape[0]).backward()
            hopt.step()

        t = time_calls({"floor": floor, "ours": ours}, repeats=repeats, device=device,
                       min_seconds=0.05)  # fmt: skip
        rows.append(_row(f"binary VAE step on MNIST, {name}", t["floor"], t["ours"], 1.15,
                         "hand training step"))  # fmt: skip
    return rows


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
    "relax": relax_rows,
    "logistic": logistic_rows,
    "vae": vae_rows,
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
