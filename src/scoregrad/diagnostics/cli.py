"""``scoregrad compare``: estimators side by side on a catalogue problem (table, CSV, JSON, PNGs).

scoregrad compare normal_square --set k=0 --n 20000 --repeats 5 --out results/
scoregrad compare normal_cos -e score_function,pathwise,mvd_coupled --sweep k=0:4:9
scoregrad compare bernoulli_toy -e score_function,disarm,relax --trajectory 2000 --lr 0.01
"""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["register"]


def _parse_value(v: str):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    if "," in v:
        return tuple(_parse_value(x) for x in v.split(","))
    return v


def _parse_sets(items: list[str]) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise typer.BadParameter(f"--set takes name=value, got {item!r} (e.g. --set k=3).")
        k, v = item.split("=", 1)
        out[k.strip()] = _parse_value(v.strip())
    return out


def _parse_sweep(spec: str) -> tuple[str, list[float]]:
    if "=" not in spec:
        raise typer.BadParameter(
            f"--sweep takes name=start:stop:count or name=v1,v2,..., got {spec!r} (e.g. k=0:3:7)."
        )
    name, rng = spec.split("=", 1)
    if ":" in rng:
        parts = rng.split(":")
        if len(parts) != 3:
            raise typer.BadParameter(f"--sweep range must be start:stop:count, got {rng!r}.")
        a, b, c = float(parts[0]), float(parts[1]), int(parts[2])
        values = [a + (b - a) * i / max(1, c - 1) for i in range(c)]
    else:
        values = [float(x) for x in rng.split(",")]
    return name.strip(), values


def register(app: typer.Typer) -> None:
    """Add the ``compare`` command to the ``scoregrad`` app."""

    @app.command("compare")
    def compare_cmd(
        problem: str = typer.Argument(..., help="catalogue problem, e.g. normal_square"),
        estimators: str = typer.Option(
            "", "--estimators", "-e", help="comma-separated names (default: all that apply)"
        ),
        n: int = typer.Option(10_000, help="samples per gradient estimate"),
        repeats: int = typer.Option(5, help="independent repeats per estimator"),
        seed: int = typer.Option(0, help="first seed"),
        set_: list[str] = typer.Option([], "--set", help="problem argument name=value"),
        out: Path | None = typer.Option(None, help="folder for CSV, JSON and PNG output"),
        sweep: str | None = typer.Option(
            None, help="vary a problem argument: name=start:stop:count (variance plot)"
        ),
        trajectory: int = typer.Option(0, help="also run Adam for this many steps and plot"),
        lr: float = typer.Option(0.01, help="Adam learning rate for --trajectory"),
        budget: int = typer.Option(
            2, help="evaluations of f per step for --trajectory (equal for every estimator)"
        ),
    ):
        """Compare gradient estimators on a problem with an exact gradient."""
        from rich.console import Console

        from .. import diagnostics as dg
        from . import problems

        console = Console(width=None if Console().is_terminal else 150)
        names = [e.strip() for e in estimators.split(",") if e.strip()] or list(dg.ESTIMATORS)
        for name in names:
            if name not in dg.ESTIMATORS and name not in dg.ALIASES:
                raise typer.BadParameter(
                    f"unknown estimator {name!r}; known: {', '.join(dg.ESTIMATORS)}."
                )
        kwargs = _parse_sets(set_)
        try:
            prob = problems.get(problem, **kwargs)
        except KeyError as e:
            raise typer.BadParameter(str(e.args[0])) from e
        except TypeError as e:
            raise typer.BadParameter(f"{problem} does not take these arguments: {e}") from e
        result = dg.compare(prob, names, n=n, repeats=repeats, seed=seed)
        result.print(console)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            stem = problem + "".join(f"_{k}{v}" for k, v in kwargs.items())
            paths = [
                result.to_csv(out / f"{stem}.csv"),
                result.to_json(out / f"{stem}.json"),
                result.plot(out / f"{stem}.png"),
            ]
            console.print("wrote " + ", ".join(str(p) for p in paths))
        if sweep:
            name, values = _parse_sweep(sweep)
            applicable = [r["estimator"] for r in result.rows]
            applicable = list(dict.fromkeys(applicable))
            sw = dg.variance_sweep(
                lambda v: problems.get(problem, **{**kwargs, name: v}), values, applicable,
                n=n, seed=seed,
            )  # fmt: skip
            target = (out or Path(".")) / f"{problem}_sweep_{name}.png"
            dg.plot_variance_sweep(sw, target, xlabel=name, title=prob.description)
            console.print(f"wrote {target}")
        if trajectory:
            runs = {}
            for label in dict.fromkeys(r["estimator"] for r in result.rows):
                per = max(1, round(next(r["evals"] for r in result.rows if r["estimator"] == label)
                                   / n))  # fmt: skip
                k = max(1, budget // per)
                if label in ("rloo", "optimal_baseline") and k < 2:
                    continue  # needs two samples: cannot match a budget this small
                runs[label] = (dg.make_estimator(label), k)
            every = max(1, trajectory // 100)
            traj = dg.trajectory(
                prob, runs, steps=trajectory, lr=lr, seed=seed, record_every=every, variance_n=1000
            )
            target = (out or Path(".")) / f"{problem}_trajectory.png"
            dg.plot_trajectory(traj, target, title=f"{prob.description}; {budget} evals/step")
            for label, rec in traj.items():
                console.print(
                    f"{label:>18}: n={runs[label][1]} per step, final loss {rec['loss'][-1]:.6g},"
                    f" evals {rec['evals'][-1]}"
                )
            console.print(f"wrote {target}")
