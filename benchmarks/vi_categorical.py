"""Categorical VAE on binarised MNIST: every estimator at the same small budget.

20 categorical latents of 10 classes, linear encoder and decoder (``scoregrad.vi.models.
categorical_vae``), Adam lr 1e-3, batch 50, every estimator at about 40 evaluations of the log
joint per image and step (see ``ESTIMATORS``). Reported per estimator: the training ELBO over
the last 10% of steps, the test ELBO and 100-sample importance-weighted bound on 1000 test images,
the median encoder-gradient variance (probes every 50 steps, 10 draws each), and the time per
step (objective and backward, timed interleaved after training) as a ratio to REINFORCE with the
leave-one-out baseline in the same run (the floor).

    PYTHONPATH=src python benchmarks/vi_categorical.py                  # 500 steps each
    PYTHONPATH=src python benchmarks/vi_categorical.py --steps 100 --estimators arsm,rb-reinforce

Writes benchmarks/results/vi_categorical.{json,md}.
"""

from __future__ import annotations

import argparse

import torch
from _common import MNIST, time_calls, write_results

from scoregrad.vi.data import load_dataset, subset
from scoregrad.vi.models.categorical_vae import ESTIMATORS, CategoricalVAE, make_estimator, run
from scoregrad.vi.models.sbn import batch_objective


def step_times(data, names, repeats: int = 5) -> dict[str, float]:
    """Seconds per training step (objective + backward, batch 50), interleaved round-robin so that
    machine load hits every estimator alike."""
    x = data.train[:50]
    model = CategoricalVAE(data.dim, train_mean=data.train.mean(0))
    fns = {}
    for name in names:
        est, n, _ = make_estimator(name)

        def step(est=est, n=n):
            model.zero_grad()
            batch_objective(model, est, n, x).backward()

        fns[name] = step
    return time_calls(fns, repeats, torch.device("cpu"), min_seconds=0.2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=MNIST)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--estimators", default=",".join(ESTIMATORS))
    ap.add_argument("--test-images", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    data = load_dataset(args.data)
    xt = subset(data.test, args.test_images, seed=2)
    rows = []
    names = ["reinforce-loo"] + [e for e in args.estimators.split(",") if e != "reinforce-loo"]
    for name in names:
        r = run(
            data, name, test_images=xt, iw_samples=100, steps=args.steps, seed=args.seed,
            grad_var_every=50, grad_var_repeats=10, progress=False,
        )  # fmt: skip
        rows.append(r)
        print(name, {k: v for k, v in r.items() if k not in ("data", "estimator")}, flush=True)
    times = step_times(data, names)
    floor = times["reinforce-loo"]
    elbo_key = f"test ELBO ({xt.shape[0]} images)"
    lines = [
        f"{data.name}, 20 latents × 10 classes, {args.steps} steps, batch 50, Adam 1e-3, "
        f"seed {args.seed}; time per step (interleaved, after training) as a ratio to "
        f"reinforce-loo in the same run ({floor * 1e3:.0f} ms/step on this loaded machine)",
        "",
        "| estimator | biased | evals/image/step | train ELBO (last 10%) | test ELBO | "
        "test IW-100 | encoder grad var (median) | time / floor |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        r["seconds/step"] = times[r["estimator"]]
        r["time_ratio"] = r["seconds/step"] / floor
        lines.append(
            f"| {r['estimator']} | {'yes' if r['biased'] else 'no'} | "
            f"{r['evals per image and step']} | {r['train ELBO (last 10% of steps)']:.2f} | "
            f"{r[elbo_key]:.2f} | {r['test IW bound, k=100']:.2f} | "
            f"{r.get('encoder grad variance (median)', float('nan')):.3g} | "
            f"{r['time_ratio']:.2f} |"
        )
    table = "\n".join(lines)
    print(table)
    write_results(
        "vi_categorical", rows, table, extra={"steps": args.steps, "torch": torch.__version__}
    )


if __name__ == "__main__":
    main()
