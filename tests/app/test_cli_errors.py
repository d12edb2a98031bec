"""Every command answers bad input with one paragraph and a non-zero exit, never a traceback.

Each case runs through the real ``scoregrad`` app in-process (typer's CliRunner) and checks the
exit code, that no traceback was printed (the exception was handled: ``SystemExit``), and that
the message names the option or thing at fault. ``--debug`` shows the traceback instead.
"""

import pytest
import torch
from typer.testing import CliRunner

from scoregrad.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # default run folders go to ./runs
    (tmp_path / "empty.pt").write_bytes(b"")
    (tmp_path / "junk.pt").write_bytes(b"PK\x03\x04 truncated zip")
    (tmp_path / "existing.txt").write_text("keep")


def _box2d_missing() -> bool:
    try:
        import Box2D  # noqa: F401
    except ImportError:
        return True
    return False


CASES = [
    (["demo", "--n", "0"], "--n"),
    (["demo", "--problem", "nope"], "unknown problem 'nope'"),
    (["demo", "--k", "nan"], "--k"),
    (["demo", "--n", "64", "--out", "existing.txt"], "already exists"),
    (["compare", "normal-square", "--n", "0"], "--n"),
    (["compare", "no-such-problem"], "unknown problem"),
    (["compare", "normal-square", "-e", "bogus"], "--estimators: unknown estimator 'bogus'"),
    (["compare", "normal-square", "--out", "existing.txt"], "is a file"),
    (["compare", "normal-square", "--sweep", "k=a:b:c"], "--sweep"),
    (["compare", "normal-square", "--set", "k"], "--set"),
    (["compare", "normal-square", "--set", "zz=1"], "does not take"),
    (["rl", "train", "CartPol-v1"], "Did you mean: CartPole-v1"),
    (["rl", "train", "CartPole-v1", "--baseline", "x"], "--baseline: unknown baseline 'x'"),
    (["rl", "train", "CartPole-v1", "--episodes", "0"], "--episodes"),
    (["rl", "train", "CartPole-v1", "--lr", "nan"], "--lr"),
    (["rl", "train", "CartPole-v1", "--hidden", "a,b"], "--hidden"),
    (["rl", "train", "CartPole-v1", "--baseline", "loo", "--batch-episodes", "1"], "at least 2"),
    (["rl", "train"], "ENV_ID"),
    (["rl", "train", "--resume", "missing"], "no checkpoint"),
    (["rl", "train", "--resume", "empty.pt"], "is empty"),
    (["rl", "train", "--resume", "junk.pt"], "cannot be read"),
    (["rl", "train", "CartPole-v1", "--out", "existing.txt"], "is a file"),
    (["rl", "eval", "missing.pt"], "no checkpoint"),
    (["rl", "eval", "empty.pt"], "is empty"),
    (["rl", "eval", "junk.pt", "--episodes", "0"], "--episodes"),
    (["rl", "compare", "CartPole-v1", "--seeds", "a,b"], "--seeds"),
    (["rl", "compare", "CartPole-v1", "--baselines", "none,bogus"], "unknown baseline 'bogus'"),
    (["rl", "sequence", "--group-size", "1"], "group_size=1"),
    (["rl", "sequence", "--task", "x"], "--task: unknown task 'x'"),
    (["vi", "beta-bernoulli", "--baseline", "x"], "--baseline: unknown baseline 'x'"),
    (["vi", "beta-bernoulli", "--samples", "0"], "--samples"),
    (["vi", "beta-bernoulli", "--steps", "0"], "--steps"),
    (["vi", "beta-bernoulli", "--lr", "nan"], "--lr"),
    (
        ["vi", "beta-bernoulli", "--schedule", "bogus", "--steps", "2"],
        "unknown learning-rate schedule",
    ),
    (["vi", "beta-bernoulli", "--resume", "missing"], "no checkpoint"),
    (["vi", "beta-bernoulli", "--resume", "empty.pt"], "is empty"),
    (["vi", "beta-bernoulli", "--resume", "junk.pt"], "cannot be read"),
    (["vi", "beta-bernoulli", "--out", "existing.txt"], "is a file"),
    (["vi", "normal-normal", "--estimator", "x"], "--estimator: unknown estimator 'x'"),
    (["vi", "logistic", "--estimator", "x"], "--estimator: unknown estimator 'x'"),
    (["vi", "logistic", "--optimizer", "lbfgs"], "--optimizer"),
    (["vi", "sbn", "--data", "missing.npz"], "not found"),
    (["vi", "gmm", "--method", "x"], "--method: unknown method 'x'"),
    (["greeks", "--rate", "nan"], "--rate"),
    (["greeks", "--replicates", "1", "--sampler", "qmc"], "--replicates"),
    (["greeks", "--n", "0"], "--n"),
    (["greeks", "--payoff", "x"], "--payoff: unknown payoff 'x'"),
    (["greeks", "--json", "existing.txt"], "already exists"),
    (["no-such-command"], "No such command"),
]
if _box2d_missing():
    CASES.append(
        (["rl", "train", "LunarLander-v3", "--episodes", "2"], 'pip install "gymnasium[box2d]"')
    )


@pytest.mark.parametrize("args, named", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_input_is_one_paragraph_and_a_nonzero_exit(args, named):
    r = runner.invoke(app, args, env={"COLUMNS": "400"})
    assert r.exit_code != 0, r.output
    assert isinstance(r.exception, SystemExit), r.exception  # handled, not a crash
    assert "Traceback" not in r.output
    assert named in " ".join(r.output.split()), r.output


def test_compare_out_existing_file_fails_before_the_comparison(monkeypatch):
    import scoregrad.diagnostics as dg

    def never(*a, **k):
        raise AssertionError("the comparison ran")

    monkeypatch.setattr(dg, "compare", never)
    r = runner.invoke(app, ["compare", "normal-square", "--out", "existing.txt"])
    assert r.exit_code == 2 and "is a file" in r.output


def test_debug_shows_the_traceback():
    r = runner.invoke(app, ["--debug", "rl", "eval", "missing.pt"])
    assert r.exit_code != 0 and r.exception is not None
    assert not isinstance(r.exception, SystemExit)  # re-raised for the traceback


def test_an_unexpected_error_says_it_is_a_bug(monkeypatch):
    import scoregrad.vi.models.gmm as gmm

    def broken(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(gmm, "fit_gmm", broken)
    r = runner.invoke(app, ["vi", "gmm", "--steps", "2", "--no-progress"])
    assert r.exit_code == 1 and "unexpected RuntimeError: boom" in r.output
    assert "--debug" in r.output and isinstance(r.exception, SystemExit)


def test_commands_leave_torch_threads_alone():
    before = torch.get_num_threads()
    runner.invoke(app, ["rl", "sequence", "--steps", "1", "--group-size", "2", "--no-progress"])
    assert torch.get_num_threads() == before
