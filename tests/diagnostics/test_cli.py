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


def test_cli_compare_refuses_bad_problem_arguments_before_running(tmp_path):
    """A non-numeric --set value, or a --sweep argument the problem does not take, a fractional
    value for a whole-number one or one that changes the parameters' shapes (per-component
    variances would not line up), is a usage error (exit 2, one message) before any estimate
    runs: nothing is written to --out."""
    runner = CliRunner()
    cases = [
        (["normal_square", "--set", "k=abc"], "'abc' is not a number"),
        (["normal_square", "--sweep", "t=0.1:0.9:3"], "does not take 't'"),
        (["mvn_quadratic", "--sweep", "dim=2:3:3"], "takes whole numbers"),
        (["mvn_quadratic", "--sweep", "dim=2:3:2"], "changes the parameters' shapes"),
    ]
    for args, message in cases:
        out = tmp_path / args[0]
        res = runner.invoke(_app(), ["compare", *args, "--n", "64", "--out", str(out)])
        assert res.exit_code == 2, res.output
        assert message in " ".join(res.output.split()), res.output
        assert not out.exists() or not any(out.iterdir())
