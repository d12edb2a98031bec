"""The categorical VAE: every estimator trains through the ELBO door (smoke), and the ELBO
gradient through a relaxable categorical guide is unbiased (z-test, |z| < 4.42 per component)."""

import itertools
import math

import pytest
import torch

import scoregrad as sg
from scoregrad.testing import assert_close_in_se
from scoregrad.vi import ScoreFunctionELBO
from scoregrad.vi.data import load_dataset
from scoregrad.vi.models.categorical_vae import (
    ESTIMATORS,
    CategoricalVAE,
    RelaxableCategorical,
    run,
)


@pytest.fixture(scope="module")
def digits():
    return load_dataset(None)  # binarised scikit-learn digits, 64 pixels


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_every_estimator_trains_and_reports(digits, name):
    r = run(
        digits, name, test_images=digits.test[:40], iw_samples=10, steps=6, batch_size=16,
        latents=3, classes=4, budget=6, grad_var_every=3, grad_var_repeats=3, progress=False,
        lr=1e-2,
    )  # fmt: skip
    assert r["steps"] == 6 and math.isfinite(r["test ELBO (40 images)"])
    assert r["test IW bound, k=10"] >= r["test ELBO (40 images)"] - 0.5  # IW ≥ ELBO up to noise
    assert r["encoder grad variance (median)"] >= 0
    assert r["biased"] == (name in {"gumbel-rao", "gumbel-softmax"})


def test_log_joint_takes_indices_and_one_hot():
    m = CategoricalVAE(x_dim=16, latents=2, classes=3)
    x = torch.bernoulli(torch.full((4, 16), 0.5))
    z = m.q(x).sample((5,))
    y = torch.nn.functional.one_hot(z, 3).float()
    assert torch.allclose(m.log_joint(x)(z), m.log_joint(x)(y))
    assert torch.allclose(m.q(x).relaxed_log_prob(y), m.q(x).log_prob(z))


@pytest.mark.parametrize(
    "make", [lambda: sg.REBAR(), lambda: sg.UnorderedSet(2), lambda: sg.ARSM()]
)
def test_elbo_gradient_unbiased_through_relaxable_guide(make):
    # 2 latents of 3 classes; log p(z) a coupled table; exact ELBO gradient by enumeration
    table = torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    theta0 = torch.tensor([[0.3, -0.2, 0.0], [-0.5, 0.4, 0.1]], dtype=torch.float64)

    def log_joint(z):
        y = z if z.is_floating_point() else torch.nn.functional.one_hot(z, 3).to(torch.float64)
        return torch.einsum("...i,ij,...j->...", y[..., 0, :], table, y[..., 1, :])

    th = theta0.clone().requires_grad_()
    q = RelaxableCategorical(logits=th)
    grid = torch.tensor(list(itertools.product(range(3), repeat=2)))
    lq = q.log_prob(grid).sum(-1)
    exact_elbo = (lq.exp() * (log_joint(grid) - lq)).sum()
    (exact,) = torch.autograd.grad(exact_elbo, th)
    reps = []
    with torch.random.fork_rng(devices=[]):  # the caller's RNG untouched
        torch.manual_seed(0)
        for _ in range(400):
            th = theta0.clone().requires_grad_()
            loss = ScoreFunctionELBO(make())(log_joint, RelaxableCategorical(logits=th), n=8)
            reps.append(torch.autograd.grad(loss, th)[0])
    reps = torch.stack(reps)
    assert_close_in_se(reps.mean(0), exact, reps.std(0) / math.sqrt(reps.shape[0]), "ELBO grad")


def test_cli_sub_command(tmp_path, monkeypatch):
    import json

    monkeypatch.chdir(tmp_path)  # the default run folder goes to ./runs

    from typer.testing import CliRunner

    from scoregrad.cli import app

    runner = CliRunner()
    args = ["vi", "categorical-vae", "--steps", "3", "--latents", "2", "--classes", "3"]
    r = runner.invoke(app, [*args, "--budget", "4", "--iw-samples", "5", "--test-subset", "20",
                            "--estimator", "unordered-set", "--no-progress", "--json", "-"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["estimator"] == "unordered-set"
    bad = runner.invoke(app, [*args, "--estimator", "nope", "--no-progress"])
    assert (
        bad.exit_code == 2 and "unknown estimator" in bad.output and "Traceback" not in bad.output
    )
