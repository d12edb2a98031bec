"""Group baselines for a GRU token policy with black-box sequence rewards (scoregrad.rl.sequence).

For each task and each baseline (RLOO, group-normalised, moving average, none) and seed: the mean
reward at the start and over the last 20 steps of a fixed budget of steps, and wall time. The
reference in the same run is the ``none`` baseline (plain REINFORCE on the same samples).

    python benchmarks/rl_sequence_benchmark.py --seeds 0,1,2 --steps 300

Writes benchmarks/results/rl_sequence_benchmark.{json,md}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from scoregrad.rl.sequence import DigitSumTask, SequenceTrainer, TargetStringTask

RESULTS = Path(__file__).parent / "results"


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--group-size", type=int, default=8)
    p.add_argument("--prompts", type=int, default=16)
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args()
    torch.set_num_threads(1)
    seeds = [int(s) for s in args.seeds.split(",")]
    tasks = {"digit-sum (L=4)": DigitSumTask(4), "target-string (6 letters)": TargetStringTask()}
    rows = []
    for tname, task in tasks.items():
        for b in ("loo", "norm", "ma", "none"):
            finals, starts, secs = [], [], []
            for s in seeds:
                t = SequenceTrainer(task, b, args.group_size, args.prompts, seed=s)
                r = t.train(args.steps)
                finals.append(r.final)
                starts.append(float(np.mean(r.mean_reward[:5])))
                secs.append(r.seconds)
            row = {
                "task": tname,
                "baseline": b,
                "start": float(np.mean(starts)),
                "final_median": float(np.median(finals)),
                "final_min": float(np.min(finals)),
                "final_max": float(np.max(finals)),
                "seconds_median": float(np.median(secs)),
            }
            print(row, flush=True)
            rows.append(row)
    md = [
        "# rl_sequence_benchmark",
        "",
        f"Seeds {seeds}; {args.steps} steps of {args.prompts} prompts × K = {args.group_size} "
        "samples; one torch thread. Reward: mean over the last 20 steps (median, min-max).",
        "",
        "| task | baseline | start | final reward median (min-max) | s/seed |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        md.append(
            f"| {r['task']} | {r['baseline']} | {r['start']:.3f} | {r['final_median']:.3f} "
            f"({r['final_min']:.3f}-{r['final_max']:.3f}) | {r['seconds_median']:.1f} |"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rl_sequence_benchmark.json").write_text(json.dumps(rows, indent=2))
    (out / "rl_sequence_benchmark.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
