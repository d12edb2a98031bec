"""scoregrad: Monte Carlo gradient estimation built around the score-function estimator.

    ∇θ E_{p(x;θ)}[f(x)] = E[f(x) ∇θ log p(x; θ)]

>>> import torch, scoregrad as sg
>>> from torch.distributions import Normal
>>> mu = torch.tensor(1.0, requires_grad=True)
>>> est = sg.estimate_grad(lambda x: (x - 3.0) ** 2, lambda mu: Normal(mu, 1.0), {"mu": mu},
...                        n=10_000, estimator=sg.ScoreFunction(sg.baselines.LeaveOneOut()), seed=0)
>>> round(float(est.grad["mu"]))
-4
"""

from . import baselines, control_variates, core, diagnostics, graphs, problems, sampling
from .dice import magic_box
from .errors import (
    ControlVariateError,
    EstimatorNotApplicable,
    FunctionOutputError,
    ParameterError,
    SampleSizeError,
    ScoregradError,
)
from .estimate import GradientEstimate, estimate_grad, expectation, score
from .estimators import (
    ARM,
    REBAR,
    RELAX,
    RLOO,
    VIMCO,
    DisARM,
    Enumerate,
    Estimator,
    GumbelSoftmax,
    MeasureValued,
    Pathwise,
    ScoreFunction,
    StraightThrough,
)

__version__ = "0.1.0"

__all__ = [
    "baselines",
    "control_variates",
    "core",
    "diagnostics",
    "graphs",
    "problems",
    "sampling",
    "magic_box",
    "GradientEstimate",
    "estimate_grad",
    "expectation",
    "score",
    "Estimator",
    "ScoreFunction",
    "ScoregradError",
    "FunctionOutputError",
    "ParameterError",
    "EstimatorNotApplicable",
    "SampleSizeError",
    "ControlVariateError",
    "ARM",
    "DisARM",
    "Enumerate",
    "VIMCO",
    "RLOO",
    "REBAR",
    "RELAX",
    "Pathwise",
    "MeasureValued",
    "GumbelSoftmax",
    "StraightThrough",
]
