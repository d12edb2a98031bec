import json

from typer.testing import CliRunner

from scoregrad.cli import app

runner = CliRunner()


def _train(*args):
    return runner.invoke(app, ["rl", "train", *args, "--no-progress"])


def test_train_eval_compare(tmp_path):
    out = tmp_path / "run"
    r = _train("CartPole-v1", "--baseline", "loo", "--episodes", "8", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "8 episodes" in r.output and (out / "checkpoint.pt").exists()
    r = _train("--resume", str(out), "--episodes", "12", "--json", str(tmp_path / "r.json"))
    assert r.exit_code == 0 and "12 episodes" in r.output, r.output
    assert json.loads((tmp_path / "r.json").read_text())["episodes"] == 12
    r = runner.invoke(app, ["rl", "eval", str(out), "--episodes", "3", "--json", "-"])
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.output)["returns"]) == 3
    cmp_dir = tmp_path / "cmp"
    r = runner.invoke(
        app,
        ["rl", "compare", "CartPole-v1", "--baselines", "none,loo", "--seeds", "0,1",
         "--episodes", "4", "--batch-episodes", "2", "--out", str(cmp_dir), "--no-progress"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    assert (cmp_dir / "learning_curves.png").exists()
    assert len(json.loads((cmp_dir / "summary.json").read_text())) == 2
    assert "unsolved seed counts as its 4-episode budget" in r.output


def test_default_out_is_a_fresh_folder_per_run(tmp_path):
    for _ in range(2):
        assert _train("CartPole-v1", "--episodes", "2", "--batch-episodes", "2").exit_code == 0
    runs = sorted((tmp_path / "runs" / "rl").iterdir())  # conftest: cwd is tmp_path
    assert len(runs) == 2 and all((r / "checkpoint.pt").exists() for r in runs)


def test_training_twice_into_one_folder_is_refused(tmp_path):
    out = tmp_path / "run"
    assert _train("CartPole-v1", "--episodes", "8", "--out", str(out)).exit_code == 0
    episodes = (out / "episodes.csv").read_text()
    r = _train("CartPole-v1", "--episodes", "4", "--out", str(out))
    assert r.exit_code == 2 and f"--resume {out}" in " ".join(r.output.split())
    assert (out / "episodes.csv").read_text() == episodes  # 9 lines stay 9 lines
    r = _train("CartPole-v1", "--episodes", "4", "--out", str(out), "--force")
    assert r.exit_code == 0 and "moved to" in r.output
    (archived,) = tmp_path.glob("run.archived-*")
    assert (archived / "episodes.csv").read_text() == episodes


def test_resume_keeps_budget_and_refuses_changed_settings(tmp_path):
    out = tmp_path / "run"
    r = _train("CartPole-v1", "--episodes", "8", "--lr", "0.003", "--out", str(out))
    assert r.exit_code == 0
    r = _train("--resume", str(out))  # no --episodes: the saved 8, not the default 1000
    assert r.exit_code == 0 and ": 8 episodes" in r.output, r.output
    r = _train("--resume", str(out), "--lr", "0.01", "--seed", "4", "--baseline", "loo")
    text = " ".join(r.output.split())
    assert r.exit_code == 2
    for part in ("--lr 0.01 (saved 0.003)", "--seed 4 (saved 0)", "--baseline loo (saved value)"):
        assert part in text, text
    r = _train("--resume", str(out), "--lr", "0.01", "--episodes", "12", "--allow-changes")
    assert r.exit_code == 0 and ": 12 episodes" in r.output, r.output
    record = json.loads((out / "run.json").read_text())
    assert record["changes"][-1]["options"] == ["--lr 0.01 (saved 0.003)"]
    assert record["config"]["lr"] == 0.01


def test_deprecated_baseline_spelling_still_works(tmp_path):
    r = _train("CartPole-v1", "--baseline", "ma", "--episodes", "2", "--out", str(tmp_path / "x"))
    assert r.exit_code == 0 and "deprecated spelling of 'moving-average'" in r.output


def test_env_step_budget(tmp_path):
    r = _train("CartPole-v1", "--env-steps", "100", "--out", str(tmp_path / "s"))
    assert r.exit_code == 0, r.output
    steps = json.loads((tmp_path / "s" / "run.json").read_text())["progress"]
    assert "of 100" in steps


def test_sequence_command():
    r = runner.invoke(app, ["rl", "sequence", "--steps", "3", "--group-size", "2", "--no-progress"])
    assert r.exit_code == 0 and "mean reward" in r.output, r.output
    r = runner.invoke(app, ["rl", "sequence", "--steps", "3", "--group-size", "1"])
    assert r.exit_code == 2 and "group_size=1" in r.output


def test_show_defaults_prints_the_env_settings():
    r = runner.invoke(app, ["rl", "train", "Pendulum-v1", "--show-defaults"])
    assert r.exit_code == 0, r.output
    lines = {line.split()[0]: line.split()[1] for line in r.output.splitlines()[1:]}
    assert lines["batch"] == "steps" and lines["surrogate"] == "ppo-clip"
    assert lines["env_steps"] == "200000"
    r = runner.invoke(app, ["rl", "train", "Pendulum-v1", "--show-defaults", "--lr", "0.5"])
    assert "lr                     0.5" in r.output  # what the user gives wins


def test_train_uses_the_env_defaults_and_resumes_with_new_options(tmp_path):
    out = tmp_path / "p"
    small = ["--env-steps", "64", "--n-steps", "16", "--num-envs", "2", "--hidden", "8",
             "--max-steps", "20", "--minibatches", "2", "--epochs", "2"]  # fmt: skip
    r = _train("Pendulum-v1", *small, "--normalize-obs", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "biased options in force" in r.output and "ppo-clip" in r.output
    config = json.loads((out / "run.json").read_text())["config"]
    assert config["batch"] == "steps" and config["normalize_reward"]  # from the table
    r = _train("--resume", str(out), "--state-std")
    assert r.exit_code == 2 and "--state-std on (saved off)" in " ".join(r.output.split())
    r = _train("--resume", str(out), "--env-steps", "96")
    assert r.exit_code == 0 and "96 env steps" in r.output, r.output
    r = runner.invoke(app, ["rl", "eval", str(out), "--episodes", "2", "--greedy", "--json", "-"])
    assert r.exit_code == 0 and len(json.loads(r.output)["returns"]) == 2


def test_step_only_option_with_episode_batches_is_a_clean_error():
    r = _train("CartPole-v1", "--batch", "episodes", "--normalize-obs", "--episodes", "2")
    assert r.exit_code == 2 and "batch='steps'" in r.output


def test_a_command_run_in_process_leaves_the_thread_count(tmp_path):
    """--threads applies only where the command owns its process (the console entry point):
    invoked in-process, as here or from a notebook, the caller's torch thread count stays."""
    import torch

    before = torch.get_num_threads()
    target = 2 if before != 2 else 3
    torch.set_num_threads(target)
    try:
        r = CliRunner().invoke(app, ["rl", "train", "CartPole-v1", "--episodes", "2", "--threads",
                                     "1", "--out", str(tmp_path / "run"), "--no-progress"])  # fmt: skip
        assert r.exit_code == 0, r.output
        assert torch.get_num_threads() == target
    finally:
        torch.set_num_threads(before)
