"""``scoregrad compare``: estimators side by side on a catalogue problem (table, CSV, JSON, PNGs).

scoregrad compare normal-square --set k=0 --n 20000 --repeats 5 --out results/
scoregrad compare normal-cos -e score-function,pathwise,mvd-coupled --sweep k=0:4:9
scoregrad compare bernoulli-toy -e score-function,disarm,relax --trajectory 2000 --lr 0.01
scoregrad compare poisson-polynomial --auto      # also estimator="auto": its choice and pilot

Problem and estimator names are kebab-case on the command line (the snake_case names of the
Python catalogue still work, with a note). ``--out`` must not hold earlier results: the files a
comparison would write are checked before it runs (``--force`` moves old ones aside).
"""

from __future__ import annotations

import inspect
from pathlib import Path

import typer

from ..app.cli import FORCE, JSON, SEED, choose, finite, note, write_json
from ..app.names import Names

__all__ = ["register", "register_demo", "kebab_names"]


def kebab_names(kind: str, keys) -> tuple[Names, dict]:
    """Command-line names for registry keys (``score_function`` -> ``score-function``) and the
    map back to the keys."""
    back = {k.replace("_", "-"): k for k in keys}
    return Names(kind, list(back)), back


def _parse_value(v: str):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    if "," in v:
        return tuple(_parse_value(x) for x in v.split(","))
    return v


def _numeric(v) -> bool:
    return isinstance(v, int | float) or (isinstance(v, tuple) and all(map(_numeric, v)))


def _parse_sets(items: list[str]) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise typer.BadParameter(f"--set takes name=value, got {item!r} (e.g. --set k=3).")
        k, v = item.split("=", 1)
        value = _parse_value(v.strip())
        if not _numeric(value):  # every catalogue argument is a number or a tuple of numbers
            raise typer.BadParameter(
                f"--set {item}: {v.strip()!r} is not a number (problem arguments are numbers, "
                "or comma-separated numbers: e.g. --set k=3 or --set logits=0.1,-0.3).",
                param_hint="--set",
            )
        out[k.strip()] = value
    return out


def _sweep_problems(problem: str, kwargs: dict, name: str, values: list[float]) -> list:
    """The problem at each value of the swept argument, built before anything runs (an argument
    it does not take, or a value it refuses, is a usage error, not a failure after the
    comparison); integral values for an argument whose default is an integer (a dimension)."""
    from ..errors import ScoregradError
    from . import problems
    from .comparison import check_sweep_shapes

    default = inspect.signature(problems.CATALOGUE[problem]).parameters.get(name)
    if (
        default is not None
        and isinstance(default.default, int)
        and not isinstance(default.default, bool)
    ):
        if any(v != int(v) for v in values):
            raise typer.BadParameter(
                f"--sweep {name} takes whole numbers (its default is {default.default}), got "
                f"{values}.", param_hint="--sweep",
            )  # fmt: skip
        values = [int(v) for v in values]
    out = []
    for v in values:
        try:
            out.append(problems.get(problem, **{**kwargs, name: v}))
        except TypeError as e:
            raise typer.BadParameter(
                f"{problem} does not take {name!r}: {e}", param_hint="--sweep"
            ) from e
        except (ValueError, ScoregradError) as e:
            raise typer.BadParameter(
                f"{problem} refuses {name}={v}: {e}", param_hint="--sweep"
            ) from e
    try:
        check_sweep_shapes(out, values, name)
    except ScoregradError as e:
        raise typer.BadParameter(str(e), param_hint="--sweep") from e
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
        try:
            a, b, c = float(parts[0]), float(parts[1]), int(parts[2])
        except ValueError as e:
            raise typer.BadParameter(f"--sweep range {rng!r} is not start:stop:count.") from e
        if c < 1:
            raise typer.BadParameter(f"--sweep count must be at least 1, got {c}.")
        values = [a + (b - a) * i / max(1, c - 1) for i in range(c)]
    else:
        try:
            values = [float(x) for x in rng.split(",")]
        except ValueError as e:
            raise typer.BadParameter(f"--sweep values {rng!r} are not numbers.") from e
    return name.strip(), values


def _json_text(result) -> str:
    """The comparison's strict JSON (as ``Comparison.to_json`` writes it), as text."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        return result.to_json(Path(d) / "comparison.json").read_text()


def register(app: typer.Typer) -> None:
    """Add the ``compare`` and ``demo`` commands to the ``scoregrad`` app."""
    register_demo(app)

    @app.command("compare")
    def compare_cmd(
        problem: str = typer.Argument(..., help="catalogue problem, e.g. normal-square"),
        estimators: str = typer.Option(
            "", "--estimators", "-e", help="comma-separated names (default: all that apply)"
        ),
        n: int = typer.Option(10_000, min=2, help="samples per gradient estimate"),
        repeats: int = typer.Option(5, min=1, help="independent repeats per estimator"),
        seed: SEED = 0,
        set_: list[str] = typer.Option([], "--set", help="problem argument name=value"),
        out: Path | None = typer.Option(None, help="folder for CSV, JSON and PNG output"),
        force: FORCE = False,
        json_path: JSON = None,
        sweep: str | None = typer.Option(
            None, help="vary a problem argument: name=start:stop:count (variance plot)"
        ),
        trajectory: int = typer.Option(0, min=0, help="also run Adam for this many steps and plot"),
        lr: float = typer.Option(
            0.01, min=0, callback=finite, help="Adam learning rate for --trajectory"
        ),
        budget: int = typer.Option(
            2, min=1, help="evaluations of f per step for --trajectory (equal for every estimator)"
        ),
        auto: bool = typer.Option(
            False, "--auto", help="also run estimator='auto' (a pilot chooses) and show its choice"
        ),
        auto_cost: str = typer.Option(
            "time", "--auto-cost", help="what --auto minimises variance times: time or evals"
        ),
    ):
        """Compare gradient estimators on a problem with an exact gradient."""
        from rich.console import Console

        from .. import diagnostics as dg
        from ..app.runs import claim_output_file
        from . import problems

        console = Console(width=None if Console().is_terminal else 150)
        problem_names, problem_keys = kebab_names("problem", problems.CATALOGUE)
        problem = problem_keys[choose(problem_names, problem, "PROBLEM")]
        estimator_names, estimator_keys = kebab_names("estimator", [*dg.ESTIMATORS, *dg.ALIASES])
        default = ",".join(k.replace("_", "-") for k in dg.ESTIMATORS)
        names = [
            estimator_keys[e]
            for e in choose(estimator_names, estimators or default, "--estimators", many=True)
        ]  # fmt: skip
        kwargs = _parse_sets(set_)
        try:
            prob = problems.get(problem, **kwargs)
        except KeyError as e:
            raise typer.BadParameter(str(e.args[0])) from e
        except TypeError as e:
            raise typer.BadParameter(f"{problem} does not take these arguments: {e}") from e
        sweep_spec = _parse_sweep(sweep) if sweep else None
        if sweep_spec:
            swept = _sweep_problems(problem, kwargs, *sweep_spec)
        stem = problem + "".join(f"_{k}{v}" for k, v in kwargs.items())
        targets = []  # every file this command will write, checked before the comparison runs
        if out is not None:
            if out.exists() and not out.is_dir():
                raise typer.BadParameter(f"{out} is a file, not a folder.", param_hint="--out")
            targets += [out / f"{stem}.{ext}" for ext in ("csv", "json", "png")]
        if sweep_spec:
            targets.append((out or Path(".")) / f"{problem}_sweep_{sweep_spec[0]}.png")
        if trajectory:
            targets.append((out or Path(".")) / f"{problem}_trajectory.png")
        if json_path is not None and str(json_path) != "-":
            targets.append(Path(json_path))
        for target in targets:
            moved = claim_output_file(target, force=force, option="--out")
            if moved is not None:
                note(f"the old {target} was moved to {moved}.")
        chosen = {name: dg.make_estimator(name) for name in names}
        if auto:
            from ..estimators.auto import Auto

            if auto_cost not in ("time", "evals"):
                raise typer.BadParameter("--auto-cost is time or evals.", param_hint="--auto-cost")
            chosen["auto"] = Auto(cost=auto_cost)
        result = dg.compare(prob, chosen, n=n, repeats=repeats, seed=seed)
        if str(json_path) != "-":
            result.print(console)
        if json_path is not None:
            if str(json_path) == "-":
                typer.echo(_json_text(result))
            else:
                result.to_json(json_path)
        if out is not None:
            paths = [
                result.to_csv(out / f"{stem}.csv"),
                result.to_json(out / f"{stem}.json"),
                result.plot(out / f"{stem}.png"),
            ]
            console.print("wrote " + ", ".join(str(p) for p in paths))
        if sweep_spec:
            name, values = sweep_spec
            applicable = [r["estimator"] for r in result.rows if r["estimator"] in names]
            applicable = list(dict.fromkeys(applicable))
            by_value = dict(zip(values, swept, strict=True))
            sw = dg.variance_sweep(by_value.__getitem__, values, applicable, n=n, seed=seed)
            target = (out or Path(".")) / f"{problem}_sweep_{name}.png"
            dg.plot_variance_sweep(sw, target, xlabel=name, title=prob.description)
            console.print(f"wrote {target}")
        if trajectory:
            runs = {}
            for label in dict.fromkeys(
                r["estimator"] for r in result.rows if r["estimator"] in names
            ):
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


def register_demo(app: typer.Typer) -> None:
    """Add the ``demo`` command to the ``scoregrad`` app."""

    @app.command()
    def demo(
        problem: str = typer.Option(
            "normal-square", help="a problem of scoregrad.problems, e.g. normal-cos"
        ),
        k: float = typer.Option(3.0, callback=finite, help="the problem's constant k, if any"),
        n: int = typer.Option(65_536, min=64, help="samples per estimate (at least 64)"),
        seed: SEED = 0,
        out: Path = typer.Option(
            None, help="where to write the variance plot (default: a fresh runs/demo/ folder)"
        ),
        force: FORCE = False,
        json_path: JSON = None,
    ):
        """Compare the score-function estimator's variance reduction on a problem with exact answers."""
        import time

        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        from ..app.runs import claim_output_file, default_run_folder
        from . import problems as P
        from .demo import plot_variance, run_demo, variance_curve

        names, keys = kebab_names("problem", P.CATALOGUE)
        problem = keys[choose(names, problem, "--problem")]
        if out is None:
            out = default_run_folder("demo", problem) / "variance.png"
        moved = claim_output_file(out, force=force, option="--out")  # before any work
        if moved is not None:
            note(f"the old {out} was moved to {moved}.")
        kwargs = {"k": k} if problem.startswith("normal_") else {}
        prob = P.get(problem, **kwargs)
        start = time.perf_counter()
        rows = run_demo(prob, n, seed)  # float64 parameters: the estimates follow their dtype
        names = list(rows[0]["params"])
        exact_txt = ", ".join(f"∂/∂{k} = {rows[0]['params'][k]['exact']:.5g}" for k in names)
        table = Table(
            title=escape(f"∇θ E[f] for {prob.description}  (n = {n:,}, seed {seed})"),
            caption=f"exact: {exact_txt}; z = (estimate - exact)/stderr",
        )
        table.add_column("estimator")
        for k in names:
            table.add_column(f"∂/∂{k} ± se", justify="right")
            table.add_column("z", justify="right")
            table.add_column("var/sample", justify="right")
        table.add_column("time", justify="right")
        for r in rows:
            cells = [r["estimator"]]
            for k in names:
                c = r["params"][k]
                cells += [
                    f"{c['estimate']:.4f} ± {c['stderr']:.1e}",
                    f"{c['z']:+.2f}",
                    f"{c['var_per_sample']:.3g}",
                ]
            table.add_row(*cells, f"{r['seconds'] * 1e3:.0f} ms")
        console = Console(width=max(140, Console().width))
        console.print(table)
        ns = [2**p for p in range(6, 16) if 2**p <= n]  # the curve stops at the table's n
        param, curves = variance_curve(prob, ns, seed)
        plot_variance(ns, curves, param, f"Variance vs samples: {prob.description}", out)
        write_json(json_path, {"problem": problem, "n": n, "seed": seed, "rows": rows})
        console.print(f"variance-vs-n plot written to {out}  ({time.perf_counter() - start:.1f} s)")
        console.print(
            "|bias z| is (estimate - exact)/stderr: for an unbiased estimator below 3 in 99.7% of "
            "runs (the rows share one seed's draws, so their z move together)."
        )
