"""Throughput and fixed cost of estimate_grad against hand-written closed forms, and streaming memory.

Problem: x ~ N(μ, diag(σ²)) in D dimensions (parameters μ and log σ), f(x) = Σ_d (x_d - 1)².
References, computed in the same run on the same draws' distribution:
  * closed form: eps ~ N(0, 1), x = μ + σ eps, score_μ = eps/σ, score_logσ = eps² - 1,
    grad = mean(f · score), stderr = std(f · score)/√n (the same estimator and outputs);
  * matvec floor: the gradient alone as f @ score / n (no standard errors), faster still.
Targets (issue #2): within 2x of the closed form at n = 10⁶; fixed cost at D = 1, n = 16 under
100 µs above the closed form; n = 10⁸ (D = 10) chunked in a few hundred MB.

    python benchmarks/core_throughput.py [--device cuda] [--dtype float64] [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys

import torch
from torch.distributions import Normal

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from _common import machine, time_calls, write_results  # noqa: E402

import scoregrad as sg  # noqa: E402


def dist_fn(mu, log_sigma):
    return Normal(mu, log_sigma.exp())


def cost(x):
    return ((x - 1.0) ** 2).sum(-1)


def closed_form(mu, log_sigma, n, loo=False):
    """The same estimator by hand: gradient and standard errors for μ and log σ."""
    sigma = log_sigma.exp()
    eps = torch.randn(n, mu.shape[0], dtype=mu.dtype, device=mu.device)
    x = mu + sigma * eps
    f = cost(x)
    w = (f - f.mean()) * (n / (n - 1)) if loo else f
    out = []
    for s in (eps / sigma, eps * eps - 1.0):
        g = w[:, None] * s
        out.append((g.mean(0), g.std(0) / math.sqrt(n)))
    return out


def matvec_floor(mu, log_sigma, n):
    sigma = log_sigma.exp()
    eps = torch.randn(n, mu.shape[0], dtype=mu.dtype, device=mu.device)
    f = cost(mu + sigma * eps)
    return f @ (eps / sigma) / n, f @ (eps * eps - 1.0) / n


def ours(mu, log_sigma, n, loo=False):
    est = sg.ScoreFunction(sg.baselines.LeaveOneOut() if loo else None)
    return sg.estimate_grad(cost, dist_fn, {"mu": mu, "log_sigma": log_sigma}, n=n, estimator=est)


def peak_memory_mb(n: int, dim: int, device: str, dtype: str) -> dict:
    """Run one chunked estimate in a fresh process; report its peak RSS above the import baseline."""
    code = f"""
import time, torch, json, scoregrad as sg
from torch.distributions import Normal
torch.set_default_dtype(getattr(torch, "{dtype}"))
dev = torch.device("{device}")
def hwm_mb():  # this process's peak resident memory (VmHWM; ru_maxrss can carry the parent's)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
base = hwm_mb()
mu = torch.zeros({dim}, device=dev, requires_grad=True)
ls = torch.zeros({dim}, device=dev, requires_grad=True)
t = time.perf_counter()
est = sg.estimate_grad(lambda x: ((x - 1.0) ** 2).sum(-1), lambda mu, log_sigma: Normal(mu, log_sigma.exp()),
                       {{"mu": mu, "log_sigma": ls}}, n={n}, seed=0)
sec = time.perf_counter() - t
peak = hwm_mb()
gpu = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else 0.0
print(json.dumps(dict(base_mb=base, peak_mb=peak, seconds=sec, gpu_peak_mb=gpu,
                      grad_mu0=float(est.grad["mu"][0]), stderr_mu0=float(est.stderr["mu"][0]))))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--quick", action="store_true", help="smaller grid, fewer repeats")
    ap.add_argument("--memory-n", type=float, default=1e8)
    ap.add_argument("--repeats", type=int, default=None, help="timing rounds (default 7, quick 3)")
    ap.add_argument("--tag", default="", help="suffix for the results file (e.g. the machine)")
    ap.add_argument(
        "--sections",
        default="throughput,fixed,memory",
        help="comma-separated subset of throughput,fixed,memory",
    )
    args = ap.parse_args()
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    dims = [1, 10] if args.quick else [1, 10, 100]
    ns = [10**4, 10**5] if args.quick else [10**4, 10**5, 10**6]
    repeats = args.repeats or (3 if args.quick else 7)
    rows, lines = [], []
    head = (
        "| D | n | ours plain (Msamples/s) | closed form | ratio | ours LOO | closed LOO | ratio "
        "| matvec floor | ratio to floor |"
    )
    lines += [
        f"core_throughput on {args.device} ({args.dtype}), {machine()}",
        "",
        head,
        "|" + "---|" * 10,
    ]
    sections = set(args.sections.split(","))
    print(lines[0])
    print(head)
    for dim in dims if "throughput" in sections else []:
        mu = torch.zeros(dim, dtype=dtype, device=device, requires_grad=True)
        ls = torch.zeros(dim, dtype=dtype, device=device, requires_grad=True)
        for n in ns:
            if dim * n > 10**8:
                continue
            t = time_calls(
                {
                    "ours": lambda: ours(mu, ls, n),
                    "closed": lambda: closed_form(mu.detach(), ls.detach(), n),
                    "ours_loo": lambda: ours(mu, ls, n, loo=True),
                    "closed_loo": lambda: closed_form(mu.detach(), ls.detach(), n, loo=True),
                    "floor": lambda: matvec_floor(mu.detach(), ls.detach(), n),
                },
                repeats=repeats,
                device=device,
                min_seconds=0.05,
            )
            row = dict(
                D=dim,
                n=n,
                **{f"{k}_s": v for k, v in t.items()},
                ratio_plain=t["ours"] / t["closed"],
                ratio_loo=t["ours_loo"] / t["closed_loo"],
                ratio_floor=t["ours"] / t["floor"],
            )
            rows.append(row)
            line = (
                f"| {dim} | {n:.0e} | {n / t['ours'] / 1e6:.2f} | {n / t['closed'] / 1e6:.2f} | "
                f"{row['ratio_plain']:.2f}x | {n / t['ours_loo'] / 1e6:.2f} | "
                f"{n / t['closed_loo'] / 1e6:.2f} | {row['ratio_loo']:.2f}x | "
                f"{n / t['floor'] / 1e6:.2f} | {row['ratio_floor']:.2f}x |"
            )
            lines.append(line)
            print(line, flush=True)

    fixed_lines, mem_lines, fixed, mem = [], [], None, None
    if "fixed" in sections:
        fixed, fixed_lines = fixed_cost(dtype, device)
    if "memory" in sections:
        mem, mem_lines = memory(args)
    name = f"core_throughput_{args.device.split(':')[0]}_{args.dtype}"
    if sections != {"throughput", "fixed", "memory"}:
        name += "_" + "_".join(sorted(sections))
    if args.tag:
        name += f"_{args.tag}"
    path = write_results(
        name,
        rows,
        "\n".join(lines + fixed_lines + mem_lines),
        extra={"fixed_cost": fixed, "memory": mem, "args": vars(args)},
    )
    print(f"results written to {path}")


def fixed_cost(dtype, device):
    """Per-call time at D = 1, n = 16, against the closed form."""
    mu = torch.zeros(1, dtype=dtype, device=device, requires_grad=True)
    ls = torch.zeros(1, dtype=dtype, device=device, requires_grad=True)
    t = time_calls(
        {
            "ours": lambda: ours(mu, ls, 16),
            "ours_loo": lambda: ours(mu, ls, 16, loo=True),
            "closed": lambda: closed_form(mu.detach(), ls.detach(), 16),
            "expectation": lambda: sg.expectation(cost, dist_fn(mu, ls), 16).backward(),
        },
        repeats=15,
        device=device,
        min_seconds=0.1,
    )
    fixed = dict(
        ours_us=t["ours"] * 1e6,
        ours_loo_us=t["ours_loo"] * 1e6,
        closed_us=t["closed"] * 1e6,
        expectation_backward_us=t["expectation"] * 1e6,
        overhead_us=(t["ours"] - t["closed"]) * 1e6,
    )
    fixed_lines = [
        "",
        "Fixed cost per call (D = 1, n = 16):",
        "",
        "| call | µs per call |",
        "|---|---|",
        f"| estimate_grad plain | {fixed['ours_us']:.0f} |",
        f"| estimate_grad LOO | {fixed['ours_loo_us']:.0f} |",
        f"| expectation + backward | {fixed['expectation_backward_us']:.0f} |",
        f"| closed form (same outputs) | {fixed['closed_us']:.0f} |",
        f"| overhead of estimate_grad over closed form | {fixed['overhead_us']:.0f} |",
    ]
    print("\n".join(fixed_lines))
    return fixed, fixed_lines


def memory(args):
    """Peak memory of one streamed estimate with n = args.memory_n, D = 10."""
    mem = peak_memory_mb(int(args.memory_n), 10, args.device, args.dtype)
    mem_lines = [
        "",
        f"Streaming n = {args.memory_n:.0e}, D = 10 (default chunking): peak RSS "
        f"{mem['peak_mb']:.0f} MB (after imports {mem['base_mb']:.0f} MB, so "
        f"{mem['peak_mb'] - mem['base_mb']:.0f} MB for the estimate), {mem['seconds']:.1f} s, "
        f"GPU peak {mem['gpu_peak_mb']:.0f} MB; grad μ₀ = {mem['grad_mu0']:.5f} ± "
        f"{mem['stderr_mu0']:.5f} (exact -2)",
    ]
    print("\n".join(mem_lines))
    return mem, mem_lines


if __name__ == "__main__":
    main()
