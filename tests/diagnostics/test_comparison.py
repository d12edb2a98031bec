"""scoregrad.diagnostics.compare: comparison rows, flags, sweeps and trajectories.

False-alarm rates: unbiased estimators must not be flagged (|z| > 4.42 has probability 1e-5 per
component); the hot Gumbel-softmax relaxation must be flagged (its bias is > 20 standard errors
at this n, so a miss has probability < 1e-20).
"""

import json

import pytest

import scoregrad as sg
from scoregrad import diagnostics as dg


def test_compare_rows_flags_and_outputs(tmp_path):
    prob = sg.problems.bernoulli_toy(t=0.2, logits=(0.5, -0.5))
    ests = {
        "score_function": "score_function",
        "disarm": sg.DisARM(),
        "gumbel_softmax": sg.GumbelSoftmax(2.0),
        "pathwise": "pathwise",
    }
    cmp = dg.compare(prob, ests, n=20_000, repeats=2, seed=0)
    by = {(r["estimator"], r["index"]): r for r in cmp.rows}
    assert set(by) == {
        (e, i) for e in ("score_function", "disarm", "gumbel_softmax") for i in ("0", "1")
    }
    assert "pathwise" in cmp.skipped and "rsample" in cmp.skipped["pathwise"]
    for i in ("0", "1"):
        assert abs(by[("score_function", i)]["bias_z"]) < dg.Z_FLAG
        assert abs(by[("disarm", i)]["bias_z"]) < dg.Z_FLAG
        g = by[("gumbel_softmax", i)]
        assert g["biased"] and abs(g["bias_z"]) > dg.Z_FLAG
        assert by[("disarm", i)]["evals"] == 2 * by[("score_function", i)]["evals"] == 40_000
        # exact gradient column and SNR are consistent
        r = by[("score_function", i)]
        assert r["snr"] == pytest.approx(abs(r["mean"]) / r["variance"] ** 0.5)
        assert r["work_variance"] > 0
    csv_path = cmp.to_csv(tmp_path / "c.csv")
    assert csv_path.read_text().splitlines()[0].startswith("estimator,param,index,mean,exact")
    data = json.loads(cmp.to_json(tmp_path / "c.json").read_text())
    assert data["n"] == 20_000 and len(data["rows"]) == 6
    assert cmp.plot(tmp_path / "c.png").stat().st_size > 1000


def test_unknown_estimator_name():
    with pytest.raises(sg.ScoregradError, match="disarm"):
        dg.make_estimator("disram")


def test_quadrature_matches_mohamed_section3_at_k0():
    v = dg.normal_estimator_variances(lambda x: x**2, lambda x: 2 * x, mu=1.0, sigma=1.0)
    expected = {
        "score_function": (30, 136),
        "optimal_baseline": (14, 64),
        "pathwise": (4, 12),
        "mvd_coupled": (1.0929582, 8),
    }
    for k, (a, b) in expected.items():
        assert v[k][0] == pytest.approx(a, rel=1e-6) and v[k][1] == pytest.approx(b, rel=1e-6)


def test_sweep_and_trajectory(tmp_path):
    sw = dg.variance_sweep(
        lambda k: sg.problems.get("normal_cos", k=k),
        [0.5, 2.0],
        ["score_function", "pathwise", "disarm"],
        n=2000,
    )
    assert set(sw["variance"]) == {"score_function", "pathwise"}
    assert len(sw["variance"]["pathwise"]["mu"]) == 2
    # a swept dimension changes what a component index means: refused
    with pytest.raises(sg.errors.ArgumentError, match="changes the parameters' shapes"):
        dg.variance_sweep(lambda d: sg.problems.get("mvn_quadratic", dim=d), [1, 2],
                          ["score_function"], n=500)  # fmt: skip
    assert dg.plot_variance_sweep(sw, tmp_path / "s.png").exists()
    prob = sg.problems.bernoulli_toy()
    tr = dg.trajectory(
        prob,
        {"disarm": (sg.DisARM(), 1), "sf": (sg.ScoreFunction(), 2)},
        steps=50,
        lr=0.05,
        record_every=10,
        variance_n=200,
    )
    assert tr["disarm"]["evals"][-1] == tr["sf"]["evals"][-1] == 100
    assert tr["disarm"]["loss"][-1] < tr["disarm"]["loss"][0]  # zero-variance DisARM descends
    assert dg.plot_trajectory(tr, tmp_path / "t.png").exists()
