"""ELBO estimators: unbiasedness against exact enumeration / closed forms (z-tests), the multi-
sample bounds, and the errors for bad log joints and mismatched guides.

Statistical tests compare a Monte Carlo mean with its exact value at a fixed seed and require
|z| < 4.42 per component: a false-alarm rate of 1e-5 per component (scoregrad.testing)."""

import math

import pytest
import torch
import torch.distributions as D

import scoregrad as sg
from scoregrad.control_variates import ScoreControlVariate
from scoregrad.testing import Z_CRIT, mean_z
from scoregrad.vi import (
    EstimateGradELBO,
    ImportanceWeightedELBO,
    LogJointError,
    MeanFieldBernoulli,
    MeanFieldNormal,
    PathwiseELBO,
    RaoBlackwellELBO,
    ScoreFunctionELBO,
    SupportMismatchError,
    check_support,
    exact_elbo,
    iw_bound,
)
from scoregrad.vi.models.beta_bernoulli import BetaBernoulli
from scoregrad.vi.models.normal_normal import NormalNormal


@pytest.fixture(autouse=True)
def _float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


class TableModel:
    """A small discrete model: log p(x, z) given by a table over z ∈ {0, 1}³ (not factorised)."""

    def __init__(self, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.table = torch.randn(8, generator=g, dtype=torch.float64) * 2.0 - 3.0

    def log_joint(self, z):
        idx = (z.round().long() * torch.tensor([4, 2, 1])).sum(-1)
        return self.table[idx]


def _draws(est, log_joint, guide, n, reps, seed=0):
    """reps independent (value, flat gradient) draws of one estimator."""
    torch.manual_seed(seed)
    vals, grads = [], []
    params = list(guide.parameters())
    for _ in range(reps):
        for p in params:
            p.grad = None
        s = est(log_joint, guide, n)
        s.backward()
        vals.append(float(s.detach()))
        grads.append(torch.cat([p.grad.reshape(-1) for p in params]))
    return torch.tensor(vals), torch.stack(grads)


def _assert_unbiased(draws, exact, what):
    z = mean_z(draws, exact)
    assert bool((z.abs() < Z_CRIT).all()), f"{what}: z = {z.tolist()}"


DISCRETE_ESTIMATORS = {
    "score": lambda: ScoreFunctionELBO(sg.ScoreFunction()),
    "score-loo": lambda: ScoreFunctionELBO(sg.ScoreFunction(sg.baselines.LeaveOneOut())),
    "rb-cv": lambda: RaoBlackwellELBO(control_variate=True),
    "rb-loo-cv": lambda: RaoBlackwellELBO(True, baseline=sg.baselines.LeaveOneOut()),
    "rb-loo": lambda: RaoBlackwellELBO(False, baseline=sg.baselines.LeaveOneOut()),
    "estimate-grad-cv": lambda: EstimateGradELBO(
        sg.ScoreFunction(control_variate=ScoreControlVariate())
    ),
}


@pytest.mark.parametrize("name", list(DISCRETE_ESTIMATORS))
def test_elbo_unbiased_against_exact_enumeration(name):
    model = TableModel()
    guide = MeanFieldBernoulli(3)
    with torch.no_grad():
        guide.logits.copy_(torch.tensor([0.4, -0.7, 1.1]))
    exact = exact_elbo(model, guide)
    exact_grad = torch.autograd.grad(exact, [guide.logits])[0]
    vals, grads = _draws(DISCRETE_ESTIMATORS[name](), model, guide, n=4, reps=1500)
    _assert_unbiased(vals, exact.detach(), f"{name} value")
    _assert_unbiased(grads, exact_grad, f"{name} gradient")


def _normal_normal_exact_elbo(model: NormalNormal, guide: MeanFieldNormal):
    m, v = guide.loc, (2 * guide.log_scale).exp()
    s0, s, x = model.s0, model.s, model.data
    prior = -0.5 * math.log(2 * math.pi * s0**2) - ((m - model.mu0) ** 2 + v) / (2 * s0**2)
    lik = (-0.5 * math.log(2 * math.pi * s**2) - ((x[:, None] - m) ** 2 + v) / (2 * s**2)).sum(0)
    ent = 0.5 * torch.log(2 * math.pi * math.e * v)
    return (prior + lik + ent).sum()


CONTINUOUS_ESTIMATORS = {
    "score-loo": lambda: ScoreFunctionELBO(sg.ScoreFunction(sg.baselines.LeaveOneOut())),
    "rb-cv": lambda: RaoBlackwellELBO(),
    "pathwise": lambda: PathwiseELBO(),
    "pathwise-stl": lambda: PathwiseELBO(stick_the_landing=True),
}


@pytest.mark.parametrize("name", list(CONTINUOUS_ESTIMATORS))
def test_elbo_unbiased_normal_normal_closed_form(name):
    model = NormalNormal(dim=2)
    guide = MeanFieldNormal(2, init_loc=torch.tensor([0.3, 2.0]), init_scale=0.5)
    exact = _normal_normal_exact_elbo(model, guide)
    exact_grad = torch.cat(
        [g.reshape(-1) for g in torch.autograd.grad(exact, list(guide.parameters()))]
    )
    vals, grads = _draws(CONTINUOUS_ESTIMATORS[name](), model, guide, n=8, reps=800)
    _assert_unbiased(vals, exact.detach(), f"{name} value")
    _assert_unbiased(grads, exact_grad, f"{name} gradient")


def test_rao_blackwell_uses_markov_blanket_and_lowers_variance():
    model = NormalNormal(dim=4)  # has log_joint_local
    guide = MeanFieldNormal(4, init_loc=0.5, init_scale=0.5)

    class BlackBox:  # the same log joint without its Markov blankets
        log_joint = staticmethod(model.log_joint)

    _, g_local = _draws(RaoBlackwellELBO(), model, guide, n=8, reps=300)
    _, g_black = _draws(RaoBlackwellELBO(), BlackBox(), guide, n=8, reps=300)
    _, g_plain = _draws(ScoreFunctionELBO(sg.ScoreFunction()), model, guide, n=8, reps=300)
    v_local, v_black, v_plain = (g.var(0).mean() for g in (g_local, g_black, g_plain))
    assert v_local < v_black < v_plain


def test_exact_elbo_is_log_evidence_at_the_posterior_and_iw_bound_is_exact_there():
    model = NormalNormal(dim=1)
    post = model.posterior()
    guide = MeanFieldNormal(1, init_loc=float(post.loc), init_scale=float(post.scale))
    log_px = model.log_evidence()
    assert abs(float(_normal_normal_exact_elbo(model, guide).detach()) - log_px) < 1e-9
    # at q = posterior every importance weight equals p(x): zero-variance estimates
    assert abs(float(iw_bound(model, guide, k=50)) - log_px) < 1e-9
    s = ImportanceWeightedELBO(k=5)(model, guide, n=3)
    assert abs(float(s.detach()) - log_px) < 1e-9


def test_iw_bound_increases_with_k_towards_log_evidence():
    model = NormalNormal(dim=1)
    guide = MeanFieldNormal(1, init_loc=1.0, init_scale=0.5)
    elbo = float(_normal_normal_exact_elbo(model, guide).detach())
    b1 = float(iw_bound(model, guide, k=1, seed=0))  # one-sample estimate of the ELBO
    b1000 = float(iw_bound(model, guide, k=2000, seed=0))
    assert elbo < b1000 <= model.log_evidence() + 0.01
    assert abs(b1 - elbo) < 5.0


def test_iw_pathwise_gradient_flows():
    guide = MeanFieldNormal(2)
    ImportanceWeightedELBO(k=4)(NormalNormal(dim=2), guide, n=2).backward()
    assert guide.loc.grad is not None and torch.isfinite(guide.loc.grad).all()


def test_score_function_elbo_per_item_shapes_and_decoder_gradient():
    # amortised: 5 data points, 3 binary latents each; a "decoder" weight inside the log joint
    w = torch.tensor(1.5, requires_grad=True)
    logits = torch.zeros(5, 3, requires_grad=True)
    x = torch.arange(5.0)

    def log_joint(z):  # (n, 5, 3) -> (n, 5)
        return -((z.sum(-1) * w - x) ** 2)

    s = ScoreFunctionELBO()(log_joint, D.Bernoulli(logits=logits), n=4, item_shape=(5,))
    s.backward()
    assert logits.grad.shape == (5, 3) and w.grad is not None


@pytest.mark.parametrize("item_shape", [(), (5,)])
def test_score_function_elbo_takes_log_q_from_the_door(item_shape, monkeypatch):
    """The score-function door computes log q(z) for its surrogate anyway; the ELBO's f takes it
    (``takes_log_prob``) instead of computing it again: one log_prob per step, and the same
    numbers as an f that computes its own (bit for bit for a Normal guide)."""
    loc = torch.zeros(*item_shape, 3, requires_grad=True)
    log_scale = torch.zeros(*item_shape, 3, requires_grad=True)
    target = torch.arange(3.0)

    def log_joint(z):
        return -((z - target) ** 2).sum(-1)

    calls = []
    log_prob = D.Normal.log_prob
    monkeypatch.setattr(D.Normal, "log_prob", lambda d, z: calls.append(1) or log_prob(d, z))
    est = ScoreFunctionELBO(sg.ScoreFunction(sg.baselines.LeaveOneOut()))
    guide = D.Normal(loc, log_scale.exp())
    with sg.core.seeded(3):
        shared = est(log_joint, guide, n=64, item_shape=item_shape)
    assert len(calls) == 1
    (g_shared,) = torch.autograd.grad(shared, loc)

    monkeypatch.setattr(sg.core.evaluate.Evaluator, "takes_log_prob", property(lambda e: False))
    with sg.core.seeded(3):
        own = est(log_joint, guide, n=64, item_shape=item_shape)
    assert len(calls) == 3  # f's own, then the surrogate's
    (g_own,) = torch.autograd.grad(own, loc)
    assert torch.equal(shared, own) and torch.equal(g_shared, g_own)


# ------------------------------------------------------------------------------- errors
def test_nan_log_joint_is_a_clear_error():
    guide = MeanFieldNormal(2)
    with pytest.raises(LogJointError, match="NaN"):
        ScoreFunctionELBO()(lambda z: torch.full((z.shape[0],), float("nan")), guide, n=4)


def test_minus_inf_log_joint_names_the_support():
    guide = MeanFieldNormal(1)
    with pytest.raises(LogJointError, match="support"):
        PathwiseELBO()(lambda z: torch.log((z > 10).double()).sum(-1), guide, n=4)


@pytest.mark.parametrize(
    "bad, hint",
    [
        (lambda z: z, "reshape"),  # (n, 1) instead of (n,)
        (lambda z: torch.zeros(3), "one log density per sample"),
        (lambda z: z.expand(-1, 2).unsqueeze(-1).expand(-1, -1, 4) * 1.0, "sum the trailing"),
    ],
)
def test_wrong_shape_log_joint_is_a_clear_error(bad, hint):
    guide = MeanFieldNormal(1)
    with pytest.raises(LogJointError, match=hint):
        ScoreFunctionELBO()(bad, guide, n=4)


def test_non_numeric_log_joint():
    with pytest.raises(LogJointError, match="not numeric"):
        ScoreFunctionELBO()(lambda z: "oops", MeanFieldNormal(1), n=4)


def test_guide_support_mismatch_is_detected():
    model = BetaBernoulli()
    with pytest.raises(SupportMismatchError, match="Beta for"):
        check_support(model, MeanFieldNormal(1, init_loc=0.5, init_scale=0.01))
    # and when the model's own density rejects the samples (torch argument validation)
    with pytest.raises(SupportMismatchError, match="support"):
        ScoreFunctionELBO()(model, MeanFieldNormal(1, init_loc=2.0), n=4)
    from scoregrad.vi import BetaGuide

    check_support(model, BetaGuide(1))  # fine


def test_estimator_applicability_errors():
    with pytest.raises(sg.EstimatorNotApplicable, match="rsample"):
        PathwiseELBO()(TableModel(), MeanFieldBernoulli(3), n=4)
    with pytest.raises(sg.EstimatorNotApplicable, match="Guide"):
        RaoBlackwellELBO()(TableModel(), D.Bernoulli(logits=torch.zeros(3)), n=4)
    with pytest.raises(sg.SampleSizeError, match="n >= 2"):
        RaoBlackwellELBO()(TableModel(), MeanFieldBernoulli(3), n=1)
    with pytest.raises(sg.SampleSizeError):
        ScoreFunctionELBO()(TableModel(), MeanFieldBernoulli(3), n=0)


def _core(name):
    import scoregrad.estimators as E

    if not hasattr(E, name):
        pytest.skip(f"scoregrad.estimators.{name} is not in this install")
    return getattr(E, name)


def _batched_grads(est, log_joint, logits0, n, reps):
    """reps independent gradient draws in one call: the guide is replicated over an item axis
    (one independent ELBO per replicate), so nothing loops over samples or replicates."""
    torch.manual_seed(0)
    logits = logits0.expand(reps, *logits0.shape).clone().requires_grad_()
    lj = lambda z: log_joint(z.reshape(-1, z.shape[-1])).reshape(z.shape[:-1])
    est(lj, D.Bernoulli(logits=logits), n, item_shape=(reps,)).backward()
    return logits.grad


LOGITS = torch.tensor([0.4, -0.7, 1.1], dtype=torch.float64)


def test_vimco_elbo_unbiased_for_the_two_sample_bound():
    # exact E[log ½(w₁ + w₂)] by enumerating all pairs of configurations; |z| < 4.42 per
    # component (false-alarm rate 1e-5 each). Checks that log q keeps its graph for VIMCO:
    # with 20000 draws, detaching it gives |z| up to 14.
    vimco = _core("VIMCO")
    model = TableModel()
    guide = MeanFieldBernoulli(3)
    with torch.no_grad():
        guide.logits.copy_(LOGITS)
    from scoregrad.vi.elbo.bounds import _configurations

    base = guide.base()
    z = _configurations(base)  # (8, 3)
    log_q = base.log_prob(z).sum(-1)
    log_w = model.log_joint(z) - log_q
    pair_lq = log_q[:, None] + log_q[None, :]
    bound = torch.logaddexp(log_w[:, None], log_w[None, :]) - math.log(2)
    exact = (pair_lq.exp() * bound).sum()
    exact_grad = torch.autograd.grad(exact, [guide.logits])[0]
    grads = _batched_grads(ScoreFunctionELBO(vimco()), model.log_joint, LOGITS, 2, 20000)
    _assert_unbiased(grads, exact_grad, "vimco gradient")


def test_estimate_grad_door_refuses_vimco_naming_the_elbos_that_run_it():
    """EstimateGradELBO(VIMCO(k)) reported the k-sample bound with a gradient wrong for it (|z|
    up to 17 against enumeration): the door holds log q fixed and loses VIMCO's pathwise term.
    It is refused by the estimator's declaration, naming the ELBOs that do run it."""
    vimco = _core("VIMCO")
    with pytest.raises(sg.EstimatorNotApplicable, match="ScoreFunctionELBO") as e:
        EstimateGradELBO(vimco(4))
    assert "ImportanceWeightedELBO" in str(e.value)

    class Declared(sg.ScoreFunction):  # any estimator declaring the need, not only VIMCO
        needs_f_param_graph = True

    with pytest.raises(sg.EstimatorNotApplicable, match="needs_f_param_graph"):
        EstimateGradELBO(Declared())
    assert ScoreFunctionELBO(vimco()).log_q_graph  # the door that runs it keeps log q's graph
    assert not ScoreFunctionELBO(sg.ScoreFunction()).log_q_graph


@pytest.mark.parametrize("name", ["ARM", "DisARM", "REBAR", "RELAX"])
def test_discrete_core_estimators_unbiased_for_the_elbo(name):
    # |z| < 4.42 per component (false-alarm rate 1e-5 each)
    cls = _core(name)
    model = TableModel()
    guide = MeanFieldBernoulli(3)
    with torch.no_grad():
        guide.logits.copy_(LOGITS)

    def relaxable(z):  # REBAR/RELAX evaluate f at relaxed z: interpolate the table multilinearly
        t = model.table.reshape(2, 2, 2)
        w = torch.stack([1 - z, z], -1)  # (n, 3, 2)
        return torch.einsum("abc,na,nb,nc->n", t, w[:, 0], w[:, 1], w[:, 2])

    exact = exact_elbo(relaxable, guide)
    exact_grad = torch.autograd.grad(exact, [guide.logits])[0]
    grads = _batched_grads(ScoreFunctionELBO(cls()), relaxable, LOGITS, 1, 4000)
    _assert_unbiased(grads, exact_grad, f"{name} gradient")
