import json

from typer.testing import CliRunner

from scoregrad.cli import app

runner = CliRunner()


def test_train_eval_compare(tmp_path):
    out = tmp_path / "run"
    r = runner.invoke(
        app,
        [
            "rl",
            "train",
            "CartPole-v1",
            "--baseline",
            "loo",
            "--episodes",
            "8",
            "--batch-episodes",
            "4",
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    assert "8 episodes" in r.output and (out / "checkpoint.pt").exists()
    r = runner.invoke(
        app,
        [
            "rl",
            "train",
            "CartPole-v1",
            "--resume",
            str(out / "checkpoint.pt"),
            "--episodes",
            "12",
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    assert r.exit_code == 0 and "12 episodes" in r.output, r.output
    r = runner.invoke(app, ["rl", "eval", str(out / "checkpoint.pt"), "--episodes", "3", "--json"])
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.output)["returns"]) == 3
    cmp_dir = tmp_path / "cmp"
    r = runner.invoke(
        app,
        [
            "rl",
            "compare",
            "CartPole-v1",
            "--baselines",
            "none,loo",
            "--seeds",
            "0,1",
            "--episodes",
            "4",
            "--batch-episodes",
            "2",
            "--out",
            str(cmp_dir),
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    assert (cmp_dir / "learning_curves.png").exists()
    assert len(json.loads((cmp_dir / "summary.json").read_text())) == 2


def test_cli_errors(tmp_path):
    r = runner.invoke(app, ["rl", "train", "CartPol-v1", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "Did you mean: CartPole-v1" in r.output
    r = runner.invoke(
        app, ["rl", "train", "CartPole-v1", "--baseline", "x", "--out", str(tmp_path)]
    )
    assert r.exit_code == 2 and "choose one of" in r.output
    r = runner.invoke(app, ["rl", "eval", str(tmp_path / "missing.pt")])
    assert r.exit_code == 2 and "no checkpoint" in r.output


def test_sequence_command():
    r = runner.invoke(app, ["rl", "sequence", "--steps", "3", "--group-size", "2"])
    assert r.exit_code == 0 and "mean reward" in r.output, r.output
    r = runner.invoke(app, ["rl", "sequence", "--steps", "3", "--group-size", "1"])
    assert r.exit_code == 2 and "group_size=1" in r.output
