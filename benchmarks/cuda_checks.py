"""Device placement and unbiasedness on CUDA: estimates of catalogue problems with parameters on
the GPU must come back on the GPU, in the parameters' dtype, and pass the same z-tests as on the CPU.

    python benchmarks/cuda_checks.py            # needs a CUDA device; prints a table
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_results  # noqa: E402

import scoregrad as sg  # noqa: E402
from scoregrad import baselines as B  # noqa: E402
from scoregrad import control_variates as CV  # noqa: E402
from scoregrad import sampling as S  # noqa: E402
from scoregrad.testing import Z_CRIT  # noqa: E402


def _on(device, problem, dtype=torch.float64):
    return {k: v.detach().to(device).requires_grad_() for k, v in problem.params(dtype).items()}


def main():
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check")
        return
    dev = torch.device("cuda")
    configs = {
        "plain": lambda: sg.ScoreFunction(),
        "loo": lambda: sg.ScoreFunction(B.LeaveOneOut()),
        "score_cv": lambda: sg.ScoreFunction(control_variate=CV.ScoreControlVariate()),
        "antithetic": lambda: sg.ScoreFunction(sampler=S.Antithetic()),
        "qmc": lambda: sg.ScoreFunction(sampler=S.QMC(16)),
    }
    extra = {}
    for name in ("Pathwise", "MeasureValued", "DisARM", "ARM"):
        if hasattr(sg, name):
            extra[name.lower()] = getattr(sg, name)
    rows, failures = [], 0
    for pname in (
        "normal_square",
        "normal_cos",
        "mvn_quadratic",
        "bernoulli_toy",
        "categorical_table",
        "gamma_x_log_x",
        "exponential_square",
    ):
        kw = {"logits": (0.0, 0.4, -0.3)} if pname == "bernoulli_toy" else {}
        problem = sg.problems.get(pname, **kw)
        _, exact = problem.exact()
        cfgs = dict(configs)
        for label, cls in extra.items():
            cfgs[label] = cls
        if problem.discrete:  # replicate SEs of QMC are unreliable on discrete families
            cfgs.pop("qmc")
        for label, make in cfgs.items():
            params = _on(dev, problem)
            t = time.perf_counter()
            try:
                est = sg.estimate_grad(
                    problem.f, problem.dist_fn, params, n=2**16, estimator=make(), seed=1
                )
            except sg.ScoregradError as e:  # not applicable to this family
                rows.append(dict(problem=pname, estimator=label, status=f"n/a: {type(e).__name__}"))
                continue
            except Exception as e:  # a device bug: record it and go on with the other checks
                failures += 1
                rows.append(dict(problem=pname, estimator=label, status=f"ERROR: {e}"[:120]))
                continue
            sec = time.perf_counter() - t
            on_device = all(g.device.type == "cuda" for g in est.grad.values())
            dtype_ok = all(g.dtype == torch.float64 for g in est.grad.values())
            # |z| < Z_CRIT, or exact up to float rounding (zero-variance estimators)
            zs = []
            for k, e in exact.items():
                err = (est.grad[k].cpu() - e).abs()
                z_k = err / est.stderr[k].cpu()
                z_k[err <= 1e-9 * (1 + e.abs())] = 0.0
                zs.append(float(z_k.max()))
            z = max(zs)
            ok = on_device and dtype_ok and z < Z_CRIT
            failures += not ok
            rows.append(
                dict(
                    problem=pname,
                    estimator=label,
                    on_cuda=on_device,
                    dtype_ok=dtype_ok,
                    max_abs_z=round(z, 2),
                    seconds=round(sec, 4),
                    status="ok" if ok else "FAIL",
                )
            )
    lines = [
        f"CUDA checks on {torch.cuda.get_device_name(0)}",
        "",
        "| problem | estimator | on cuda | dtype | max abs z | s | status |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['problem']} | {r['estimator']} | {r.get('on_cuda', '')} | "
            f"{r.get('dtype_ok', '')} | {r.get('max_abs_z', '')} | {r.get('seconds', '')} "
            f"| {r['status']} |"
        )
    print("\n".join(lines))
    write_results("cuda_checks", rows, "\n".join(lines), extra={"failures": failures})
    print(f"{failures} failure(s)")


if __name__ == "__main__":
    main()
