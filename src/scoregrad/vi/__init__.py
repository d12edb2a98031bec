"""Black-box variational inference with score-function (and other) ELBO gradients.

See ``scoregrad.vi.elbo`` for the estimators, ``scoregrad.vi.fit`` for the training loop,
``scoregrad.vi.models`` for the models and ``docs/vi.md`` for measured results.
"""

from .elbo import (
    ELBOEstimator,
    EstimateGradELBO,
    ImportanceWeightedELBO,
    PathwiseELBO,
    RaoBlackwellELBO,
    ScoreFunctionELBO,
    call_log_joint,
    check_support,
    exact_elbo,
    iw_bound,
)
from .errors import DataFileError, LogJointError, SupportMismatchError
from .fit import FitResult, fit, plot_comparison, plot_history
from .guides import BetaGuide, Guide, MeanFieldBernoulli, MeanFieldCategorical, MeanFieldNormal

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
    "fit",
    "FitResult",
    "plot_history",
    "plot_comparison",
    "Guide",
    "MeanFieldNormal",
    "BetaGuide",
    "MeanFieldBernoulli",
    "MeanFieldCategorical",
    "SupportMismatchError",
    "DataFileError",
    "LogJointError",
]
