"""``scoregrad greeks``: Monte Carlo price and Greeks with standard errors, side by side with the
closed form where one exists.

    scoregrad greeks --payoff call --spot 90,100,110 --strike 100 --vol 0.25 --rate 0.1 \\
        --div 0.03 --maturity 0.2 --n 10000 --method all --cv terminal

prints one table row per option and Greek: each method's estimate, its standard error and the
z-score (estimate - exact)/SE against the closed form. ``--csv``/``--json`` write the same rows.
Lists of spots and strikes price the whole grid in one simulation. Every option is checked before
the simulation starts (a NaN rate is named as ``--rate``, not blamed on the payoff), and an
existing ``--csv``/``--json`` file is never written over (``--force`` moves it aside); ``--json -``
prints the rows as JSON to stdout. Errors go through the ``scoregrad`` command's one error path.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import typer

from ..app.cli import FORCE, JSON, SEED, choose, finite
from .greeks.names import DEFAULT_GREEKS, GREEK_NAMES
from .names import MODEL_NAMES, PAYOFF_NAMES


def _fmt(v, digits=5):
    if v is None:
        return "-"
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return str(v)
    return f"{v:.{digits}g}"


def print_table(rows, results, skipped, title):
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title)
    multi = len({(r["spot"], r["strike"]) for r in rows}) > 1
    if multi:
        t.add_column("spot", justify="right")
        t.add_column("strike", justify="right")
    t.add_column("")
    t.add_column("closed form", justify="right")
    for m in results:
        t.add_column(f"{m}", justify="right")
        t.add_column(f"{m} SE", justify="right")
        t.add_column(f"{m} z", justify="right")
    for r in rows:
        cells = [_fmt(r["spot"]), _fmt(r["strike"])] if multi else []
        cells += [r["quantity"], _fmt(r["exact"])]
        for m in results:
            if r[m] is None:
                cells += ["n/a", "", ""]
            else:
                cells += [_fmt(r[m]), _fmt(r[f"{m}_se"], 3), _fmt(r[f"{m}_z"], 2)]
        t.add_row(*cells)
    con = Console()
    need = 30 + (24 if multi else 0) + 34 * len(results)
    if con.width < need:
        con = Console(width=need)
    con.print(t)
    for m, r in results.items():
        con.print(
            f"[dim]{m}: n={r.n:,} paths, {r.seconds * 1e3:.1f} ms, sampler {r.sampler}, control "
            f"variate {r.control_variate}, engine {r.info.get('engine')}[/dim]"
        )
        for g, why in skipped.get(m, {}).items():
            con.print(f"[yellow]{m} {g}: {why}[/yellow]")


def write_rows(rows, path: Path):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".json":
        path.write_text(json.dumps(rows, indent=1))
        return
    keys = list(rows[0].keys())
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def register(app: typer.Typer) -> None:
    """Add the ``greeks`` command to the main ``scoregrad`` app."""

    @app.command("greeks")
    def greeks_cmd(
        payoff: str = typer.Option("call", help=f"One of: {', '.join(PAYOFF_NAMES)}."),
        model: str = typer.Option("gbm", help="gbm, heston or merton."),
        spot: str = typer.Option("100", help="Spot price, or a comma-separated list."),
        strike: str = typer.Option("100", help="Strike, or a comma-separated list (one grid)."),
        vol: float = typer.Option(
            0.2, min=0, callback=finite, help="Volatility (Heston: sqrt of initial variance)."
        ),
        rate: float = typer.Option(0.05, callback=finite, help="Risk-free rate (continuous)."),
        div: float = typer.Option(0.0, callback=finite, help="Dividend yield (continuous)."),
        maturity: float = typer.Option(1.0, min=0, callback=finite, help="Maturity in years."),
        dates: int = typer.Option(1, min=1, help="Equally spaced monitoring dates (path payoffs)."),
        n: int = typer.Option(100_000, min=2, help="Number of paths."),
        method: str = typer.Option("lr", help="lr, pathwise, mixed or all (side by side)."),
        greeks: str = typer.Option(
            ",".join(DEFAULT_GREEKS), help=f"Comma list from {', '.join(GREEK_NAMES)}."
        ),
        sampler: str = typer.Option("iid", help="iid, antithetic or qmc (randomised Sobol)."),
        replicates: int = typer.Option(16, min=2, help="QMC replicates (the SE comes from them)."),
        cv: str = typer.Option("none", help="Control variate for LR: none, terminal, geometric."),
        baseline: bool = typer.Option(True, help="Leave-one-out baseline for LR."),
        seed: SEED = 0,
        dtype: str = typer.Option("float64", help="float64 or float32."),
        device: str = typer.Option("cpu", help="cpu or cuda."),
        option: str = typer.Option("call", help="call or put (digitals, barriers, Asians)."),
        barrier: float = typer.Option(
            None, min=0, callback=finite, help="Barrier level (--payoff barrier)."
        ),
        barrier_kind: str = typer.Option("up-and-out", help="up/down-and-out/in."),
        lookback_kind: str = typer.Option("floating", help="floating or fixed."),
        cash: float = typer.Option(
            1.0, callback=finite, help="Cash amount of a cash-or-nothing digital."
        ),
        kappa: float = typer.Option(2.0, min=0, callback=finite, help="Heston mean reversion."),
        mean_var: float = typer.Option(
            0.04, min=0, callback=finite, help="Heston long-run variance."
        ),
        xi: float = typer.Option(0.3, min=0, callback=finite, help="Heston vol of variance."),
        corr: float = typer.Option(
            -0.7, min=-1, max=1, callback=finite, help="Heston correlation."
        ),
        steps: int = typer.Option(16, min=1, help="Heston Euler steps per monitoring interval."),
        jump_rate: float = typer.Option(
            0.5, min=0, callback=finite, help="Merton jump intensity per year."
        ),
        jump_mean: float = typer.Option(-0.1, callback=finite, help="Merton mean log jump."),
        jump_vol: float = typer.Option(
            0.15, min=0, callback=finite, help="Merton log-jump volatility."
        ),
        csv_path: Path = typer.Option(None, "--csv", help="Also write the table as CSV."),
        json_path: JSON = None,
        force: FORCE = False,
    ):
        """Monte Carlo price and Greeks (LR / pathwise / mixed) with SEs and z-scores."""
        from ..app.cli import note
        from ..app.names import Names
        from ..app.runs import claim_output_file
        from .greeks import METHODS
        from .run import GreeksConfig, parse_floats, run_greeks

        checks = {
            "--payoff": (payoff, Names("payoff", PAYOFF_NAMES)),
            "--model": (model, Names("model", MODEL_NAMES)),
            "--method": (method, Names("method", [*METHODS, "all"])),
            "--sampler": (sampler, Names("sampler", ("iid", "antithetic", "qmc"))),
            "--cv": (cv, Names("control variate", ("none", "terminal", "geometric"))),
            "--dtype": (dtype, Names("dtype", ("float64", "float32"))),
            "--option": (option, Names("option kind", ("call", "put"))),
            "--lookback-kind": (lookback_kind, Names("lookback kind", ("floating", "fixed"))),
        }
        payoff, model, method, sampler, cv, dtype, option, lookback_kind = (
            choose(names, value, flag) for flag, (value, names) in checks.items()
        )
        for text, flag in ((spot, "--spot"), (strike, "--strike")):
            values = parse_floats(text, flag).reshape(-1).tolist()
            if not all(math.isfinite(v) and v > 0 for v in values):
                raise typer.BadParameter(f"must hold finite positive numbers, got {text!r}.",
                                         param_hint=flag)  # fmt: skip
        for path, flag in ((csv_path, "--csv"), (json_path, "--json")):
            if path is not None and str(path) != "-":  # before the simulation, not after
                moved = claim_output_file(path, force=force, option=flag)
                if moved is not None:
                    note(f"the old {path} was moved to {moved}.")
        rows, results, skipped = run_greeks(
            GreeksConfig(
                payoff=payoff,
                model=model,
                spot=spot,
                strike=strike,
                vol=vol,
                rate=rate,
                div=div,
                maturity=maturity,
                dates=dates,
                n=n,
                method=method,
                greeks=greeks,
                sampler=sampler,
                replicates=replicates,
                cv=cv,
                baseline=baseline,
                seed=seed,
                dtype=dtype,
                device=device,
                option=option,
                barrier=barrier,
                barrier_kind=barrier_kind,
                lookback_kind=lookback_kind,
                cash=cash,
                heston=dict(kappa=kappa, mean_var=mean_var, xi=xi, corr=corr, steps=steps),
                merton=dict(jump_rate=jump_rate, jump_mean=jump_mean, jump_vol=jump_vol),
            )
        )
        title = f"{payoff} under {model}: price and Greeks (theta = -dP/dT)"
        print_table(rows, results, skipped, title)
        if csv_path:
            write_rows(rows, csv_path)
        if json_path is not None and str(json_path) == "-":
            typer.echo(json.dumps(rows, indent=1))
        elif json_path:
            write_rows(rows, json_path)
