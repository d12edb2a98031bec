"""`scoregrad vi ...` runs each model and turns bad input into a clear message and exit code 2."""

import json

import numpy as np
from typer.testing import CliRunner

from scoregrad.cli import app

runner = CliRunner()


def _json(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.output[result.output.index("{") :])


def test_vi_group_is_registered():
    r = runner.invoke(app, ["vi", "--help"])
    assert r.exit_code == 0
    for cmd in ("beta-bernoulli", "normal-normal", "logistic", "sbn"):
        assert cmd in r.output


def test_beta_bernoulli_cli(tmp_path):
    out = _json(
        runner.invoke(
            app,
            [
                "vi",
                "beta-bernoulli",
                "--steps",
                "600",
                "--json",
                "--no-progress",
                "--plot",
                str(tmp_path / "bb.png"),
            ],
        )
    )
    assert abs(out["guide a"] - 16) < 0.8 and abs(out["guide b"] - 14) < 0.8
    assert (tmp_path / "bb.png").exists()


def test_normal_normal_cli():
    out = _json(
        runner.invoke(app, ["vi", "normal-normal", "--steps", "300", "--json", "--no-progress"])
    )
    assert abs(out["guide loc"] - out["exact loc"]) < 0.05


def test_logistic_cli(tmp_path):
    out = _json(
        runner.invoke(
            app,
            [
                "vi",
                "logistic",
                "--estimator",
                "pathwise",
                "--steps",
                "100",
                "--grad-var-every",
                "50",
                "--json",
                "--no-progress",
                "--checkpoint",
                str(tmp_path / "lr.pt"),
            ],
        )
    )
    assert out["test_accuracy"] > 0.85 and out["steps"] == 100
    assert (tmp_path / "lr.pt").exists()


def test_sbn_cli_digits_fallback():
    out = _json(
        runner.invoke(
            app,
            [
                "vi",
                "sbn",
                "--steps",
                "20",
                "--latents",
                "10",
                "--iw-samples",
                "20",
                "--test-subset",
                "30",
                "--json",
                "--no-progress",
            ],
        )
    )
    assert out["data"] == "binarized-digits" and out["steps"] == 20


def test_sbn_cli_missing_and_malformed_data(tmp_path):
    r = runner.invoke(app, ["vi", "sbn", "--data", str(tmp_path / "none.npz"), "--no-progress"])
    assert r.exit_code == 2 and "not found" in r.output
    bad = tmp_path / "bad.npz"
    np.savez(bad, train=np.full((4, 784), 3, np.uint8), test=np.zeros((2, 784), np.uint8))
    r = runner.invoke(app, ["vi", "sbn", "--data", str(bad), "--no-progress"])
    assert r.exit_code == 2 and "only 0 and 1" in r.output


def test_sbn_list():
    r = runner.invoke(app, ["vi", "sbn", "--list"])
    assert r.exit_code == 0 and "reinforce-loo" in r.output


def test_gmm_cli():
    out = _json(runner.invoke(app, ["vi", "gmm", "--steps", "300", "--json", "--no-progress"]))
    assert out["method"] == "score" and out["max_responsibility_gap"] < 0.2
