"""The ``scoregrad greeks`` command: table, methods side by side, CSV/JSON output, errors."""

import json

import pytest
import typer
from typer.testing import CliRunner

from scoregrad.finance.cli import register


@pytest.fixture()
def app():
    a = typer.Typer()

    @a.callback()
    def main():  # a group, as in the real app where several applications register commands
        pass

    register(a)
    return a


def test_greeks_table_all_methods(app, tmp_path):
    out = tmp_path / "g.json"
    res = CliRunner().invoke(
        app,
        [
            "greeks",
            "--spot",
            "100",
            "--vol",
            "0.25",
            "--rate",
            "0.1",
            "--div",
            "0.03",
            "--maturity",
            "0.2",
            "--n",
            "20000",
            "--method",
            "all",
            "--json",
            str(out),
        ],
        env={"COLUMNS": "200"},
    )
    assert res.exit_code == 0, res.output
    assert "closed form" in res.output and "mixed" in res.output
    assert "pathwise gamma" in res.output  # explained, not silently missing
    rows = json.loads(out.read_text())
    delta = next(r for r in rows if r["quantity"] == "delta")
    assert abs(delta["exact"] - 0.5684) < 1e-4
    for m in ("lr", "pathwise", "mixed"):
        assert abs(delta[f"{m}_z"]) < 4.42  # per-comparison false-alarm rate 1e-5
    gamma = next(r for r in rows if r["quantity"] == "gamma")
    assert gamma["pathwise"] is None and gamma["mixed"] is not None


def test_greeks_grid_csv_and_barrier(app, tmp_path):
    out = tmp_path / "g.csv"
    res = CliRunner().invoke(
        app,
        [
            "greeks",
            "--payoff",
            "cash-digital",
            "--spot",
            "90,110",
            "--strike",
            "95,105",
            "--n",
            "8000",
            "--greeks",
            "delta,gamma",
            "--csv",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    lines = out.read_text().strip().splitlines()
    assert len(lines) == 1 + 4 * 3  # header + 4 options x (price, delta, gamma)
    res = CliRunner().invoke(
        app,
        [
            "greeks",
            "--payoff",
            "barrier",
            "--barrier",
            "130",
            "--dates",
            "12",
            "--n",
            "4000",
            "--sampler",
            "qmc",
            "--greeks",
            "delta,vega",
        ],
    )
    assert res.exit_code == 0, res.output


def test_greeks_errors_are_clear(app):
    res = CliRunner().invoke(
        app, ["greeks", "--payoff", "barrier", "--barrier", "90", "--n", "1000"]
    )
    assert res.exit_code == 2 and "already breached" in res.output
    res = CliRunner().invoke(app, ["greeks", "--vol", "0", "--n", "1000"])
    assert res.exit_code == 2 and "vol" in res.output
