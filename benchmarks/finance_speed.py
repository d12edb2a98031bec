"""Speed of scoregrad.finance LR Greeks against hand-written versions of the same estimator.

Four cases (issues 6 and 11):

0. Price + 5 LR Greeks + SEs, GBM, float32, at 1e4 and 1e6 paths, against the eager torch
   "basis" form written by hand (the same sufficient-statistics estimator, chunks of 2^17 paths,
   coefficients as Python floats). Floor and scoregrad are timed alternately in one loop, so
   machine load hits both alike; the table reports the ratio of medians (targets: <= 2x at 1e4,
   <= 1.2x at 1e6).

1. European call under GBM, 1e6 paths: price + delta, gamma, vega, rho, theta, each with its
   standard error, by likelihood ratio with a leave-one-out baseline. scoregrad in float64 and
   float32 vs NumPy float64 in chunks of 65536 (the same estimator, written out by hand).
2. Arithmetic Asian call, 252 monitoring dates x 1e5 paths, LR delta and vega with SEs.
3. 1e8 paths of case 1 streamed in chunks, in a fresh process: wall time and peak RSS.

Times are medians over repeats after a warm-up, in one process, on the same machine, so the
comparison with NumPy is like for like even when the machine is shared.

    python benchmarks/finance_speed.py [--device cuda] [--repeats 7] [--skip-huge] [--threads N]
    python benchmarks/finance_speed.py --only-overhead   # case 0 alone
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from scoregrad.finance import GBM, ArithmeticAsian, Call, estimate_greeks, exact_greeks

RESULTS = Path(__file__).parent / "results"
S0, K, SIG, R, Q, T = 100.0, 100.0, 0.25, 0.1, 0.03, 0.2


# -- hand-written NumPy references --------------------------------------------------------------
def numpy_european(n, chunk=65536, seed=0):
    """LR price + 5 Greeks with SEs, float64, LOO baseline, streamed sums of y and y²."""
    rng = np.random.Generator(np.random.SFC64(seed))
    sq = math.sqrt(T)
    s = SIG * sq
    mu = R - Q - 0.5 * SIG**2
    D = math.exp(-R * T)
    loc = math.log(S0) + mu * T
    sum1 = np.zeros(6)
    sum2 = np.zeros(6)
    done = 0
    z = np.empty(chunk)
    while done < n:
        c = min(chunk, n - done)
        zc = z[:c]
        rng.standard_normal(out=zc)
        st = np.exp(loc + s * zc)
        f = np.maximum(st - K, 0.0)
        g = f - (f.sum() - f) / (c - 1)  # leave-one-out baseline
        z2m1 = zc * zc - 1.0
        Dg = D * g
        ys = (
            D * f,
            Dg * zc / (S0 * s),
            Dg * (z2m1 / (S0 * s) ** 2 - zc / (S0**2 * s)),
            Dg * (z2m1 / SIG - zc * sq),
            Dg * zc * sq / SIG - T * D * f,
            R * D * f - Dg * (mu * zc / s + z2m1 / (2 * T)),
        )
        for i, y in enumerate(ys):
            sum1[i] += y.sum()
            sum2[i] += (y * y).sum()
        done += c
    mean = sum1 / n
    se = np.sqrt((sum2 / n - mean**2) * n / (n - 1) / n)
    return mean, se


def numpy_asian(n, m=252, chunk=8192, seed=0, dtype=np.float32):
    """LR delta and vega of an arithmetic Asian call on m dates, with SEs (LOO baseline)."""
    rng = np.random.Generator(np.random.SFC64(seed))
    dt = T / m
    sdt = math.sqrt(dt)
    mu = R - Q - 0.5 * SIG**2
    D = math.exp(-R * T)
    sums = np.zeros((2, 2))
    done = 0
    while done < n:
        c = min(chunk, n - done)
        z = rng.standard_normal((c, m), dtype=dtype)
        logs = np.cumsum(mu * dt + SIG * sdt * z, axis=1, dtype=dtype)
        avg = S0 * np.exp(logs).mean(1)
        f = np.maximum(avg - K, 0).astype(np.float64)
        g = f - (f.sum() - f) / (c - 1)
        a = (z * z).sum(1, dtype=np.float64)
        w = z.sum(1, dtype=np.float64) * sdt
        ys = (D * g * z[:, 0] / (S0 * SIG * sdt), D * g * ((a - m) / SIG - w))
        for i, y in enumerate(ys):
            sums[i] += (y.sum(), (y * y).sum())
        done += c
    mean = sums[:, 0] / n
    return mean, np.sqrt((sums[:, 1] / n - mean**2) / (n - 1))


def torch_basis(n, dtype=torch.float32, device="cpu", chunk=2**17, gen=None):
    """LR price + 5 Greeks with SEs by the one-date sufficient statistics, by hand in eager torch.

    Per chunk of c paths: V = (f, f z, f z², z, z²), its sum and Gram matrix; every Greek is
    y = a·V + const with the LOO baseline folded in; (mean, M2) merged across chunks (Chan)."""
    sq = math.sqrt(T)
    s = SIG * sq
    mu = R - Q - 0.5 * SIG**2
    D = math.exp(-R * T)
    loc = math.log(S0) + mu * T
    w = (  # LR weights as polynomials c0 + c1 z + c2 z² (delta, gamma, vega, rho, theta)
        (0.0, 1 / (S0 * s), 0.0),
        (-1 / (S0 * s) ** 2, -1 / (S0**2 * s), 1 / (S0 * s) ** 2),
        (-1 / SIG, -sq, 1 / SIG),
        (0.0, sq / SIG, 0.0),
        (1 / (2 * T), -mu / s, -1 / (2 * T)),  # theta = -dP/dT: sign folded in
    )
    extra = (0.0, 0.0, 0.0, -T * D, R * D)
    count, mean, m2 = 0, None, None
    done = 0
    while done < n:
        c = min(chunk, n - done)
        z = torch.randn(c, dtype=dtype, device=device, generator=gen)
        f = torch.exp(loc + s * z).sub_(K).clamp_min_(0.0)
        fz = f * z
        z2 = z * z
        V = torch.stack([f, fz, fz * z, z, z2])
        vs = V.sum(1).double()
        S2 = (V @ V.T).double()
        vm = vs / c
        M2 = S2 - c * torch.outer(vm, vm)
        k, beta = c / (c - 1), float(vm[0]) * c / (c - 1)
        A = [[D, 0.0, 0.0, 0.0, 0.0]]
        const = [0.0]
        for (c0, c1, c2), e in zip(w, extra, strict=True):
            A.append([D * k * c0 + e, D * k * c1, D * k * c2, -D * beta * c1, -D * beta * c2])
            const.append(-D * beta * c0)
        A = torch.tensor(A, dtype=torch.float64, device=vm.device)
        cm = A @ vm + torch.tensor(const, dtype=torch.float64, device=vm.device)
        cm2 = ((A @ M2) * A).sum(-1)
        if mean is None:
            count, mean, m2 = c, cm, cm2
        else:
            tot = count + c
            delta = cm - mean
            mean = mean + delta * (c / tot)
            m2 = m2 + cm2 + delta**2 * (count * c / tot)
            count = tot
        done += c
    return mean, (m2 / (count - 1) / count).sqrt()


def overhead_case(device, repeats):
    """Floor and scoregrad alternately in one loop at 1e4 and 1e6 float32 paths."""
    m, pay = GBM(S0, SIG, R, Q, T), Call(K)
    g = ("delta", "gamma", "vega", "rho", "theta")
    ex = exact_greeks(m, pay, g)
    rows = []
    for n, reps in ((10_000, max(50, 60 * repeats)), (1_000_000, max(5, 2 * repeats))):
        gen = torch.Generator(device=device).manual_seed(5)

        def floor(n=n, gen=gen):
            return torch_basis(n, device=device, gen=gen)

        def ours(n=n):
            return estimate_greeks(m, pay, n, greeks=g, seed=1, dtype=torch.float32, device=device)

        for _ in range(3):  # warm-up
            floor(), ours()
        tf, to = [], []
        for _ in range(reps):
            for fn, acc in ((floor, tf), (ours, to)):
                t = time.perf_counter()
                out = fn()
                if device == "cuda":
                    torch.cuda.synchronize()
                acc.append(time.perf_counter() - t)
        fm, fs = floor()
        zf = max(abs(float((fm[i + 1] - ex[k]) / fs[i + 1])) for i, k in enumerate(g))
        zo = max(abs(float(v)) for v in out.z_scores(ex).values())
        rows.append(
            dict(
                case=f"greeks overhead {n:.0e}",
                n=n,
                device=device,
                floor_ms=float(np.median(tf)) * 1e3,
                ours_ms=float(np.median(to)) * 1e3,
                ratio=float(np.median(to) / np.median(tf)),
                floor_max_abs_z=round(zf, 2),
                ours_max_abs_z=round(zo, 2),
                kernel=out.info["kernel"],
            )
        )
    return rows


def overhead_table(rows):
    lines = [
        "| case | device | torch basis floor ms | scoregrad ms | ratio | target | max abs z "
        "(floor / ours) |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        target = "2.0" if r["n"] < 10**6 else "1.2"
        lines.append(
            f"| {r['case']} | {r['device']} | {r['floor_ms']:.3f} | {r['ours_ms']:.3f} | "
            f"{r['ratio']:.2f} | {target} | {r['floor_max_abs_z']} / {r['ours_max_abs_z']} |"
        )
    return lines


# -- timing --------------------------------------------------------------------------------------
def median_time(fn, repeats):
    fn()  # warm-up
    ts = []
    out = None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts)), float(np.min(ts)), out


def european_case(device, repeats):
    m = GBM(S0, SIG, R, Q, T)
    g = ("delta", "gamma", "vega", "rho", "theta")
    ex = exact_greeks(m, Call(K), g)
    rows = []
    for label, kw in [
        ("scoregrad float64", dict(dtype=torch.float64)),
        ("scoregrad float64 (torch RNG)", dict(dtype=torch.float64, rng="torch")),
        ("scoregrad float32", dict(dtype=torch.float32)),
    ]:
        if device != "cpu" and "numpy" in label:
            continue
        med, best, r = median_time(
            lambda kw=kw: estimate_greeks(
                m, Call(K), 1_000_000, greeks=g, seed=1, device=device, **kw
            ),
            repeats,
        )
        zs = {k: round(float(v), 2) for k, v in r.z_scores(ex).items()}
        rows.append(
            dict(
                case="european 1e6",
                impl=label,
                device=device,
                median_ms=med * 1e3,
                best_ms=best * 1e3,
                delta=float(r.greeks["delta"]),
                delta_se=float(r.stderr["delta"]),
                max_abs_z=max(map(abs, zs.values())),
            )
        )
    med, best, (mean, se) = median_time(lambda: numpy_european(1_000_000, seed=1), repeats)
    z = [(mean[i + 1] - float(ex[k])) / se[i + 1] for i, k in enumerate(g)]
    rows.append(
        dict(
            case="european 1e6",
            impl="NumPy float64, chunks of 65536",
            device="cpu",
            median_ms=med * 1e3,
            best_ms=best * 1e3,
            delta=mean[1],
            delta_se=se[1],
            max_abs_z=round(max(map(abs, z)), 2),
        )
    )
    return rows


def asian_case(device, repeats):
    m = GBM(S0, SIG, R, Q, T, dates=252)
    rows = []
    for label, dt in [("scoregrad float32", torch.float32), ("scoregrad float64", torch.float64)]:
        med, best, r = median_time(
            lambda dt=dt: estimate_greeks(
                m,
                ArithmeticAsian(K),
                100_000,
                greeks=("delta", "vega"),
                seed=2,
                dtype=dt,
                device=device,
            ),
            repeats,
        )
        rows.append(
            dict(
                case="asian 252x1e5",
                impl=label,
                device=device,
                median_ms=med * 1e3,
                best_ms=best * 1e3,
                delta=float(r.greeks["delta"]),
                delta_se=float(r.stderr["delta"]),
                vega=float(r.greeks["vega"]),
                vega_se=float(r.stderr["vega"]),
            )
        )
    for label, dt in [("NumPy float32", np.float32), ("NumPy float64", np.float64)]:
        med, best, (mean, se) = median_time(
            lambda dt=dt: numpy_asian(100_000, dtype=dt, seed=2), repeats
        )
        rows.append(
            dict(
                case="asian 252x1e5",
                impl=label,
                device="cpu",
                median_ms=med * 1e3,
                best_ms=best * 1e3,
                delta=mean[0],
                delta_se=se[0],
                vega=mean[1],
                vega_se=se[1],
            )
        )
    return rows


def huge_child(device, dtype):
    """Run in a fresh process: 1e8 paths, report time and peak RSS (MiB)."""
    torch.set_num_threads(max(1, torch.get_num_threads()))
    m = GBM(S0, SIG, R, Q, T)
    t = time.perf_counter()
    r = estimate_greeks(m, Call(K), 100_000_000, seed=3, device=device, dtype=getattr(torch, dtype))
    sec = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ex = exact_greeks(m, Call(K))
    print(
        json.dumps(
            dict(
                case="european 1e8 chunked",
                impl=f"scoregrad {dtype}",
                device=device,
                seconds=sec,
                peak_rss_mib=rss,
                chunks=r.info["chunks"],
                delta=float(r.greeks["delta"]),
                delta_se=float(r.stderr["delta"]),
                max_abs_z=max(abs(float(v)) for v in r.z_scores(ex).values()),
            )
        )
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (NumPy uses one)")
    ap.add_argument("--skip-huge", action="store_true")
    ap.add_argument("--only-overhead", action="store_true", help="case 0 alone")
    ap.add_argument("--huge-child", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.huge_child:
        huge_child(a.device, a.huge_child)
        return
    overhead = overhead_case(a.device, a.repeats)
    suffix = "" if a.device == "cpu" else f"_{a.device}"
    RESULTS.mkdir(exist_ok=True)
    md = "\n".join(
        [f"# finance_speed overhead ({a.device}, torch {torch.__version__})", ""]
        + overhead_table(overhead)
    )
    (RESULTS / f"finance_speed_overhead{suffix}.md").write_text(md + "\n")
    (RESULTS / f"finance_speed_overhead{suffix}.json").write_text(json.dumps(overhead, indent=1))
    print(md)
    if a.only_overhead:
        return
    rows = european_case(a.device, a.repeats) + asian_case(a.device, a.repeats)
    huge = []
    if not a.skip_huge:
        for dt in ("float32", "float64"):
            cmd = [sys.executable, __file__, "--huge-child", dt, "--device", a.device]
            if a.threads:
                cmd += ["--threads", str(a.threads)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            huge.append(json.loads(out.stdout.strip().splitlines()[-1]))
    env = dict(
        python=platform.python_version(),
        torch=torch.__version__,
        numpy=np.__version__,
        threads=torch.get_num_threads(),
        machine=platform.machine(),
        cpu_count=__import__("os").cpu_count(),
        device=torch.cuda.get_device_name() if a.device == "cuda" else "cpu",
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"finance_speed{suffix}.json").write_text(
        json.dumps(dict(env=env, overhead=overhead, rows=rows, huge=huge), indent=1)
    )
    lines = [
        f"# finance_speed ({env['device']}, torch {env['torch']}, {env['threads']} threads)",
        "",
        *overhead_table(overhead),
        "",
        "| case | implementation | device | median ms | best ms | delta ± SE | max abs z |",
        "|---|---|---|---:|---:|---|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['impl']} | {r['device']} | {r['median_ms']:.1f} | "
            f"{r['best_ms']:.1f} | {r['delta']:.4f} ± {r['delta_se']:.4f} | "
            f"{r.get('max_abs_z', '')} |"
        )
    if huge:
        lines += [
            "",
            "| 1e8 paths, chunked | device | seconds | peak RSS MiB | chunks | "
            "delta ± SE | max abs z |",
            "|---|---|---:|---:|---:|---|---:|",
        ]
        for h in huge:
            lines.append(
                f"| {h['impl']} | {h['device']} | {h['seconds']:.2f} | "
                f"{h['peak_rss_mib']:.0f} | {h['chunks']} | {h['delta']:.5f} ± "
                f"{h['delta_se']:.5f} | {h['max_abs_z']:.2f} |"
            )
    md = "\n".join(lines) + "\n"
    (RESULTS / f"finance_speed{suffix}.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
