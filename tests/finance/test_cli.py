"""The ``scoregrad greeks`` command: table, methods side by side, CSV/JSON output, errors."""

import json

import pytest
from typer.testing import CliRunner

from scoregrad.cli import app as scoregrad_app


@pytest.fixture()
def app():
    return scoregrad_app  # the real command, with its one error path


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


@pytest.mark.parametrize(
    "args, named",
    [
        (["--rate", "nan"], "--rate"),
        (["--vol", "inf"], "--vol"),
        (["--replicates", "1", "--sampler", "qmc"], "--replicates"),
        (["--n", "0"], "--n"),
        (["--spot", "nan"], "--spot"),
        (["--dtype", "float8"], "--dtype"),
        (["--sampler", "sobol"], "--sampler"),
        (["--payoff", "callz"], "--payoff"),
    ],
)
def test_bad_options_are_named_before_any_simulation(app, args, named):
    res = CliRunner().invoke(app, ["greeks", "--n", "1000", *args])
    assert res.exit_code == 2 and named in res.output, res.output
    assert "Traceback" not in res.output and "Fix f" not in res.output
    assert isinstance(res.exception, SystemExit)


def test_existing_output_file_is_refused_before_the_simulation(app, tmp_path):
    out = tmp_path / "g.json"
    out.write_text("keep me")
    res = CliRunner().invoke(app, ["greeks", "--n", "1000", "--json", str(out)])
    assert res.exit_code == 2 and "already exists" in res.output
    assert out.read_text() == "keep me" and "closed form" not in res.output
    res = CliRunner().invoke(app, ["greeks", "--n", "1000", "--json", str(out), "--force"])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())[0]["quantity"] == "price"
    (moved,) = tmp_path.glob("g.archived-*.json")
    assert moved.read_text() == "keep me"
