"""The ``scoregrad compare`` command (scoregrad.diagnostics.cli)."""

import typer
from typer.testing import CliRunner

from scoregrad.diagnostics.cli import register


def _app():
    app = typer.Typer()
    register(app)

    @app.command()
    def other():  # a second command keeps typer in multi-command mode, as in scoregrad.cli
        pass

    return app


def test_cli_compare(tmp_path):
    runner = CliRunner()
    res = runner.invoke(_app(), [
        "compare", "normal_square", "-e", "score_function,pathwise,mvd_coupled", "--set", "k=0",
        "--n", "2000", "--repeats", "2", "--out", str(tmp_path), "--sweep", "k=0:2:3",
    ])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "pathwise" in res.output and "mvd_coupled" in res.output
    for name in (
        "normal_square_k0.csv",
        "normal_square_k0.json",
        "normal_square_k0.png",
        "normal_square_sweep_k.png",
    ):
        assert (tmp_path / name).exists(), name
    res = runner.invoke(_app(), [
        "compare", "bernoulli_toy", "-e", "score_function,disarm", "--n", "500", "--repeats",
        "2", "--out", str(tmp_path), "--trajectory", "20",
    ])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert (tmp_path / "bernoulli_toy_trajectory.png").exists()
    res = runner.invoke(_app(), ["compare", "normal_square", "-e", "nope"])
    assert res.exit_code != 0 and "unknown estimator" in res.output
