"""Shared helpers for benchmarks: interleaved timing, result files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"
#: the binarised MNIST of the workspace's shared data (beside the checkout, never copied into it);
#: SCOREGRAD_MNIST names another copy
MNIST = Path(
    os.environ.get(
        "SCOREGRAD_MNIST",
        Path(__file__).resolve().parents[2] / "shared/data/binarized-mnist/binarized_mnist.npz",
    )
)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(fns: dict, repeats: int, device: torch.device, min_seconds: float = 0.0) -> dict:
    """Median seconds per call of each fn, calls interleaved round-robin so machine noise hits all
    alike. Each round calls each fn `inner` times, chosen so a round lasts ~min_seconds."""
    inner = {}
    for k, fn in fns.items():  # warm up, and size the inner loop
        fn()
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        dt = time.perf_counter() - t
        inner[k] = max(1, int(min_seconds / max(dt, 1e-9)))
    samples = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            sync(device)
            t = time.perf_counter()
            for _ in range(inner[k]):
                fn()
            sync(device)
            samples[k].append((time.perf_counter() - t) / inner[k])
    return {k: statistics.median(v) for k, v in samples.items()}


def machine() -> dict:
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def write_results(name: str, rows: list[dict], table_md: str, extra: dict | None = None) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "machine": machine(), "rows": rows, **(extra or {})}
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2))
    (RESULTS / f"{name}.md").write_text(table_md + "\n")
    return RESULTS / f"{name}.json"
