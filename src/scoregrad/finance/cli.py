"""``scoregrad greeks``: Monte Carlo price and Greeks with standard errors, side by side with the
closed form where one exists.

    scoregrad greeks --payoff call --spot 90,100,110 --strike 100 --vol 0.25 --rate 0.1 \\
        --div 0.03 --maturity 0.2 --n 10000 --method all --cv terminal

prints one table row per option and Greek: each method's estimate, its standard error and the
z-score (estimate - exact)/SE against the closed form. ``--csv``/``--json`` write the same rows.
Lists of spots and strikes price the whole grid in one simulation.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import typer

from ..errors import ScoregradError
from .greeks import DEFAULT_GREEKS, GREEK_NAMES
from .run import PAYOFF_NAMES, GreeksConfig, run_greeks


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
        vol: float = typer.Option(0.2, help="Volatility (Heston: sqrt of initial variance)."),
        rate: float = typer.Option(0.05, help="Risk-free rate (continuous)."),
        div: float = typer.Option(0.0, help="Dividend yield (continuous)."),
        maturity: float = typer.Option(1.0, help="Maturity in years."),
        dates: int = typer.Option(1, help="Equally spaced monitoring dates (path payoffs)."),
        n: int = typer.Option(100_000, help="Number of paths."),
        method: str = typer.Option("lr", help="lr, pathwise, mixed or all (side by side)."),
        greeks: str = typer.Option(
            ",".join(DEFAULT_GREEKS), help=f"Comma list from {', '.join(GREEK_NAMES)}."
        ),
        sampler: str = typer.Option("iid", help="iid, antithetic or qmc (randomised Sobol)."),
        replicates: int = typer.Option(16, help="QMC replicates (the SE comes from them)."),
        cv: str = typer.Option("none", help="Control variate for LR: none, terminal, geometric."),
        baseline: bool = typer.Option(True, help="Leave-one-out baseline for LR."),
        seed: int = typer.Option(0, help="Random seed."),
        dtype: str = typer.Option("float64", help="float64 or float32."),
        device: str = typer.Option("cpu", help="cpu or cuda."),
        option: str = typer.Option("call", help="call or put (digitals, barriers, Asians)."),
        barrier: float = typer.Option(None, help="Barrier level (--payoff barrier)."),
        barrier_kind: str = typer.Option("up-and-out", help="up/down-and-out/in."),
        lookback_kind: str = typer.Option("floating", help="floating or fixed."),
        cash: float = typer.Option(1.0, help="Cash amount of a cash-or-nothing digital."),
        kappa: float = typer.Option(2.0, help="Heston mean reversion."),
        mean_var: float = typer.Option(0.04, help="Heston long-run variance."),
        xi: float = typer.Option(0.3, help="Heston vol of variance."),
        corr: float = typer.Option(-0.7, help="Heston correlation."),
        steps: int = typer.Option(16, help="Heston Euler steps per monitoring interval."),
        jump_rate: float = typer.Option(0.5, help="Merton jump intensity per year."),
        jump_mean: float = typer.Option(-0.1, help="Merton mean log jump."),
        jump_vol: float = typer.Option(0.15, help="Merton log-jump volatility."),
        csv_path: Path = typer.Option(None, "--csv", help="Write the table as CSV."),
        json_path: Path = typer.Option(None, "--json", help="Write the table as JSON."),
    ):
        """Monte Carlo price and Greeks (LR / pathwise / mixed) with SEs and z-scores."""
        try:
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
        except ScoregradError as e:
            typer.secho(f"error: {e}", fg="red", err=True)
            raise typer.Exit(2) from e
        title = f"{payoff} under {model}: price and Greeks (theta = -dP/dT)"
        print_table(rows, results, skipped, title)
        if csv_path:
            write_rows(rows, csv_path)
        if json_path:
            write_rows(rows, json_path)
