"""Binary VAE / sigmoid belief net with 200 Bernoulli latents on statically binarised MNIST:
every discrete-latent gradient estimator trained with the same budget, side by side.

Per estimator: Adam (lr 1e-3), batch 50, a fixed number of steps (default 3000; the papers use
millions, so absolute ELBOs are far from their -111 (linear) and -78..-81 (nonlinear) after 2M
steps); then the training ELBO (last 10% of steps, and 100 draws on 1000 training images), the
test ELBO and the k = 1000 importance-weighted test bound on a test subset, the encoder-gradient
variance along its own training, and steps per second.

Fair variance ordering: one more run (REINFORCE-LOO) is probed every ``--grad-var-every`` steps
with every estimator that has no learned state, at the *same* parameters and minibatch
(``--grad-var-repeats`` draws each): the ordering DisARM <= ARM <= REINFORCE-LOO is read there.

    PYTHONPATH=src python benchmarks/vi_sbn.py [--steps 3000] [--nonlinear] [--device cuda]

Writes benchmarks/results/vi_sbn[_nonlinear].{json,md} and docs/figures/vi_sbn[_nonlinear].png.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from scoregrad.vi.data import load_dataset, subset
from scoregrad.vi.models.sbn import (
    ESTIMATORS,
    _available,
    batch_objective,
    evaluate,
    make_estimator,
    train,
)
from scoregrad.vi.training import gradient_variance, plot_comparison

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "binarized-mnist" / "binarized_mnist.npz"
LEARNED_STATE = {"nvil", "rebar", "relax"}  # untrained state would make a shared probe unfair


def shared_variance(data, args, names):
    """Variance of each estimator's encoder gradient at the same parameters and minibatches,
    along a REINFORCE-LOO training run."""
    out = {k: [] for k in names}
    steps = []
    probes = {}

    def cb(step, model, batch):
        if step % args.grad_var_every:
            return
        steps.append(step)
        x = batch(step)
        ctx = {"x_dim": data.dim, "init_value": 0.0}
        for k in names:
            if k not in probes:
                probes[k] = make_estimator(k, ctx)
            est, n = probes[k]
            v = gradient_variance(
                lambda s, est=est, n=n: batch_objective(model, est, n, x),
                list(model.parameters()),
                step,
                args.grad_var_repeats,
                [est],
                seed=args.seed,
                measure=model.encoder_parameters(),
            )
            out[k].append(v)

    train(
        data,
        "reinforce-loo",
        steps=args.shared_steps,
        batch_size=args.batch_size,
        lr=args.lr,
        nonlinear=args.nonlinear,
        seed=args.seed,
        progress=False,
        device=args.device,
        callback=cb,
    )
    return {"steps": steps, "variance": out}


def speed_pass(data, args, names, rounds: int = 3) -> dict:
    """Steps per second of each estimator, timed round-robin (``rounds`` rounds of
    ``--speed-steps`` steps each, after 10 warm-up steps; best round kept), so that the load of a
    shared machine hits every estimator alike. Training-run wall times are reported separately."""
    best = {k: 0.0 for k in names}
    for _ in range(rounds):
        for k in names:
            train(
                data,
                k,
                steps=args.speed_steps + 10,
                batch_size=args.batch_size,
                lr=args.lr,
                nonlinear=args.nonlinear,
                seed=args.seed,
                progress=False,
                device=args.device,
                callback=_Timer.cb,
            )
            best[k] = max(best[k], _Timer.rate(args.speed_steps))
    return best


class _Timer:
    """Times steps 10 .. end of a run (excluding start-up and warm-up)."""

    t0 = None
    t_end = None

    @classmethod
    def cb(cls, step, model, batch):
        if step == 9:
            cls.t0 = time.perf_counter()
        cls.t_end = time.perf_counter()

    @classmethod
    def rate(cls, steps):
        return steps / max(cls.t_end - cls.t0, 1e-9)


def write_tables(out: Path, config: dict, rows: list, args) -> str:
    fmt = lambda v, f=".2f": "—" if v is None else format(v, f)
    lines = [
        f"| estimator | samples (evals)/image | train ELBO (last 10% of steps) | train ELBO "
        f"({args.train_subset} imgs) | test ELBO ({args.test_subset} imgs) | test IW bound "
        f"k={args.iw_samples} | enc. grad var, shared params (median) | enc. grad var, own run "
        "(median) | steps/s (round-robin) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['estimator']} | {r['samples_per_image']} ({r['evals_per_image']}) | "
            f"{fmt(r['train_elbo_last10pct'])} | {fmt(r['train_elbo'])} | {fmt(r['test_elbo'])} | "
            f"{fmt(r['test_iw_bound'])} | {fmt(r.get('grad_var_median_shared'), '.3g')} | "
            f"{fmt(r['grad_var_median_own'], '.3g')} | {fmt(r.get('steps_per_second_rr'), '.1f')} |"
        )
    table = "\n".join(lines)
    out.with_suffix(".md").write_text(f"# {out.name}\n\nconfig: {json.dumps(config)}\n\n{table}\n")
    return table


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA))
    ap.add_argument("--estimators", default=",".join(ESTIMATORS))
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--nonlinear", action="store_true")
    ap.add_argument("--iw-samples", type=int, default=1000)
    ap.add_argument("--test-subset", type=int, default=500, help="random test images (fixed seed)")
    ap.add_argument("--train-subset", type=int, default=1000)
    ap.add_argument("--grad-var-every", type=int, default=500)
    ap.add_argument("--grad-var-repeats", type=int, default=10)
    ap.add_argument("--shared-steps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--speed-steps", type=int, default=100)
    ap.add_argument(
        "--speed-only",
        action="store_true",
        help="only (re)run the round-robin speed pass and update the existing results",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    path = Path(args.data)
    data = load_dataset(path if path.exists() else None)
    if not path.exists():
        print(f"{path} not found: using the binarised digits fallback", flush=True)
    names = [k for k in args.estimators.split(",") if k]
    missing = [k for k in names if k not in ESTIMATORS or not _available(k)]
    if missing:
        print(f"not available in this install (skipped): {missing}", flush=True)
    names = [k for k in names if k not in missing]
    suffix = "_nonlinear" if args.nonlinear else ""
    out = ROOT / "benchmarks" / "results" / f"vi_sbn{suffix}"
    if args.speed_only:
        saved = json.loads(out.with_suffix(".json").read_text())
        rows = saved["results"]
        speeds = speed_pass(data, args, [r["estimator"] for r in rows])
        for r in rows:
            r["steps_per_second_rr"] = speeds[r["estimator"]]
        saved["config"]["speed_steps"] = args.speed_steps
        out.with_suffix(".json").write_text(json.dumps(saved, indent=1))
        print(write_tables(out, saved["config"], rows, args))
        return
    xtr = subset(data.train, args.train_subset, seed=1).to(args.device)
    xte = subset(data.test, args.test_subset, seed=2).to(args.device)
    rows, histories = [], {}
    for name in names:
        t = time.perf_counter()
        r = train(
            data,
            name,
            steps=args.steps,
            batch_size=args.batch_size,
            lr=args.lr,
            nonlinear=args.nonlinear,
            seed=args.seed,
            grad_var_every=args.grad_var_every,
            grad_var_repeats=args.grad_var_repeats,
            progress=False,
            device=args.device,
        )
        train_secs = time.perf_counter() - t
        tr = evaluate(r["model"], xtr, elbo_samples=100, iw_samples=0)
        te = evaluate(r["model"], xte, elbo_samples=100, iw_samples=args.iw_samples)
        h = r["history"]
        row = {
            "estimator": name,
            "samples_per_image": r["samples_per_image"],
            "evals_per_image": ESTIMATORS[name]["evals"],
            "steps": r["steps"],
            "steps_per_second": r["steps_per_second"],
            "train_seconds": train_secs,
            "train_elbo_last10pct": r["train_elbo_last10pct"],
            "train_elbo": tr["elbo"],
            "test_elbo": te["elbo"],
            "test_iw_bound": te.get("iw_bound"),
            "grad_var_median_own": statistics.median(h["grad_var"]) if h["grad_var"] else None,
            "eval_seconds": time.perf_counter() - t - train_secs,
        }
        rows.append(row)
        histories[name] = h
        print(json.dumps(row), flush=True)
    shared = shared_variance(data, args, [k for k in names if k not in LEARNED_STATE])
    med = {k: statistics.median(v) for k, v in shared["variance"].items() if v}
    for row in rows:
        row["grad_var_median_shared"] = med.get(row["estimator"])
    speeds = speed_pass(data, args, names)
    for row in rows:
        row["steps_per_second_rr"] = speeds[row["estimator"]]
    out.parent.mkdir(parents=True, exist_ok=True)
    config = dict(vars(args), data_name=data.name, torch_threads=torch.get_num_threads())
    out.with_suffix(".json").write_text(
        json.dumps(
            {
                "config": config,
                "results": rows,
                "histories": histories,
                "shared_trajectory": shared,
            },
            indent=1,
        )
    )
    table = write_tables(out, config, rows, args)
    print(table)
    fig = ROOT / "docs" / "figures" / f"vi_sbn{suffix}.png"
    plot_comparison(
        histories,
        fig,
        title=f"{data.name}, {'nonlinear' if args.nonlinear else 'linear'}"
        f" binary VAE, {args.steps} steps",
    )
    print(f"figure: {fig}")


if __name__ == "__main__":
    main()
