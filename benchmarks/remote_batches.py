"""Remote evaluation: does the default batch size keep every worker busy?

f stands for an expensive remote simulator: it sleeps ``cost`` seconds per sample (sleep releases
the GIL, so a thread pool of W workers behaves like W remote machines, whatever this machine's
cores). The floor is the hand-written ideal: total work / W. Rows compare the old default
(``ceil(n / 8)`` samples per task: 8 tasks, so at most 8 busy workers) with the new one
(``workers × 4`` tasks). Killed workers and retries are tested in tests/core/test_parallel.py.

    .venv/bin/python benchmarks/remote_batches.py
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor

import torch
from _common import write_results

from scoregrad.core import Remote, map_batches

COST = 2e-5  # seconds per sample
N = 20_000


def _f(x):
    time.sleep(COST * x.shape[0])
    return x.sum(1)


def _wall(fn, repeats=3):
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main():
    x = torch.rand(N, 3)
    rows = []
    for workers in (4, 8, 16, 32):
        floor = COST * N / workers
        with ThreadPoolExecutor(workers) as ex:
            remote = Remote(ex, workers=workers)
            old = _wall(lambda: map_batches(_f, x, remote, batch_size=math.ceil(N / 8)))
            new = _wall(lambda: map_batches(_f, x, remote))
        rows.append({"workers": workers, "floor_s": floor, "old_default_x_floor": old / floor,
                     "new_default_x_floor": new / floor})  # fmt: skip
    head = (
        "| workers | floor (s) | old default (×floor) | new default (×floor) |\n|---|---|---|---|"
    )
    lines = [
        f"| {r['workers']} | {r['floor_s']:.3f} | {r['old_default_x_floor']:.2f} | "
        f"{r['new_default_x_floor']:.2f} |"
        for r in rows
    ]
    table = "\n".join([head, *lines])
    print(table)
    write_results("remote_batches", rows, table, {"n": N, "cost_per_sample_s": COST})


if __name__ == "__main__":
    main()
