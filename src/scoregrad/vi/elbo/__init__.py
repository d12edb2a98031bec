"""Estimators of the evidence lower bound and its gradient for black-box variational inference.

    ELBO(φ) = E_{q(z; φ)}[log p(x, z) - log q(z; φ)] ≤ log p(x)

Every estimator here is called as ``est(log_joint, guide, n, item_shape=())`` and returns a scalar
*surrogate* tensor whose value is the Monte Carlo ELBO estimate and whose ``.backward()`` deposits
the estimator's ELBO gradient on the guide's parameters (and, pathwise, on any parameters the log
joint uses, such as a decoder). Maximise it (minimise its negative).

* ``ScoreFunctionELBO(estimator)``: ∇φ ELBO = E_q[(log p(x,z) - log q(z)) ∇φ log q(z)], through
  ``scoregrad.expectation`` with any core estimator (``ScoreFunction`` with a baseline, and the
  discrete-latent estimators ARM/DisARM/REBAR/RELAX where installed). Needs only ``log_prob`` and
  ``sample``: any model, discrete latents included (Ranganath, Gerrish, Blei 2014).
* ``RaoBlackwellELBO(control_variate=True)``: BBVI's variance reduction for mean-field guides
  q(z) = Π_d q_d(z_d; φ_d). Component d's gradient uses only the terms that depend on z_d,

      ∇φ_d ELBO = E_q[∇φ_d log q_d(z_d) (log p_d(x, z) - log q_d(z_d) - a_d)],

  where log p_d is the model's Markov blanket of z_d (``model.log_joint_local``) or, for a black
  box, the whole log joint; the other components' log q_j are independent of z_d's score and are
  dropped. a_d is the per-element optimal control-variate coefficient Cov(f s, s)/Var(s),
  estimated leave-one-out so the estimator stays unbiased (Ranganath et al. 2014, §3).
* ``PathwiseELBO()``: z = g(ε; φ) by ``rsample``; differentiates through the sample (Kingma &
  Welling 2014). Only for reparameterisable guides.
* ``ImportanceWeightedELBO(k)``: the pathwise multi-sample bound
  log (1/k) Σ_k p(x, z_k)/q(z_k) (Burda, Grosse, Salakhutdinov 2016); ``iw_bound`` evaluates it
  without gradients (for 1000-sample test bounds).
* ``exact_elbo``: the ELBO summed over every latent configuration, for small discrete guides, a
  differentiable reference for tests.

The modules: ``checks`` (calling and checking the log joint, support checks), ``base`` (the
``ELBOEstimator`` contract and shared helpers), ``score`` (``ScoreFunctionELBO``,
``EstimateGradELBO``), ``rao_blackwell``, ``pathwise`` (``PathwiseELBO``,
``ImportanceWeightedELBO``) and ``bounds`` (``iw_bound``, ``exact_elbo``).

``log_joint(z)`` takes latents with the sample axis first, shape (n, *latent_shape), and returns
one value per sample (n,), or per sample and data point (n, *item_shape) for amortised guides.
A model object with a ``log_joint`` method (and optionally ``support``, ``log_joint_local``) works
in its place.

>>> import torch, scoregrad as sg
>>> from scoregrad.vi import MeanFieldNormal, RaoBlackwellELBO
>>> log_joint = lambda z: torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
>>> guide = MeanFieldNormal(2, init_loc=1.0)
>>> elbo = RaoBlackwellELBO()(log_joint, guide, n=64)
>>> elbo.backward()          # guide.loc.grad ≈ -loc (the exact gradient of -KL(q‖N(0,I)))
>>> bool((guide.loc.grad < 0).all())
True
"""

from .base import ELBOEstimator
from .bounds import exact_elbo, iw_bound
from .checks import call_log_joint, check_support
from .pathwise import ImportanceWeightedELBO, PathwiseELBO
from .rao_blackwell import RaoBlackwellELBO
from .score import EstimateGradELBO, ScoreFunctionELBO

__all__ = [
    "ELBOEstimator",
    "ScoreFunctionELBO",
    "RaoBlackwellELBO",
    "PathwiseELBO",
    "ImportanceWeightedELBO",
    "EstimateGradELBO",
    "iw_bound",
    "exact_elbo",
    "call_log_joint",
    "check_support",
]
