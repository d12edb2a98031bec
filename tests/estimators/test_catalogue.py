"""Every unbiased estimator on every catalogue problem it applies to: z-tests against the exact
gradient; everywhere else it must refuse with EstimatorNotApplicable (naming alternatives).

False-alarm rate: |z| < 4.42 per component (1e-5 each, fixed seeds); about 80 components in all,
so this file's false-alarm chance is below 0.1%.
"""

import pytest
import torch

import scoregrad as sg
from scoregrad.problems import CATALOGUE
from scoregrad.testing import assert_grad_unbiased

CONTINUOUS_RSAMPLE = {
    "normal_square",
    "normal_exp",
    "normal_cos",
    "mvn_quadratic",
    "gamma_x_log_x",
    "beta_square",
    "exponential_square",
}
MVD = {
    "normal_square",
    "normal_exp",
    "normal_cos",
    "bernoulli_toy",
    "categorical_table",
    "categorical_batch",
    "categorical_bernoulli_toy",
    "poisson_polynomial",
    "exponential_square",
}
BERNOULLI = {"bernoulli_toy"}
CATEGORICAL = {"categorical_table", "categorical_batch", "categorical_bernoulli_toy"}

ESTIMATORS = {
    "score_function": (lambda: sg.ScoreFunction(), set(CATALOGUE)),
    "rloo": (lambda: sg.RLOO(), set(CATALOGUE)),
    "pathwise": (lambda: sg.Pathwise(), CONTINUOUS_RSAMPLE),
    "mvd_coupled": (lambda: sg.MeasureValued(coupling=True), MVD),
    "mvd_independent": (lambda: sg.MeasureValued(coupling=False), MVD),
    "arm": (lambda: sg.ARM(), BERNOULLI | CATEGORICAL),
    "disarm": (lambda: sg.DisARM(), BERNOULLI | CATEGORICAL),
    "rebar": (lambda: sg.REBAR(), BERNOULLI | CATEGORICAL | {"onehot_table"}),
    "relax": (lambda: sg.RELAX(), BERNOULLI | CATEGORICAL | {"onehot_table"}),
}

CASES = [(e, p) for e in ESTIMATORS for p in CATALOGUE]


def _problem(name):
    if name == "bernoulli_toy":
        return CATALOGUE[name](logits=(0.0, 0.6, -1.1))
    return CATALOGUE[name]()


@pytest.mark.parametrize("est_name,prob_name", CASES)
def test_unbiased_or_not_applicable(est_name, prob_name):
    make, applies = ESTIMATORS[est_name]
    prob = _problem(prob_name)
    params = prob.params()
    if prob_name not in applies:
        with pytest.raises(sg.EstimatorNotApplicable, match="ScoreFunction"):
            sg.estimate_grad(prob.f, prob.dist_fn, params, n=16, estimator=make(), seed=0)
        return
    seed = sorted(CATALOGUE).index(prob_name) * 100 + sorted(ESTIMATORS).index(est_name)
    est = sg.estimate_grad(prob.f, prob.dist_fn, params, n=20_000, estimator=make(), seed=seed)
    assert_grad_unbiased(est, prob.exact(params)[1])
    assert torch.all(est.stderr[next(iter(params))] >= 0)
