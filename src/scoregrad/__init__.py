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

from .app.lazy import lazy_exports

# Names are imported on first use (PEP 562), so `import scoregrad` (and the `scoregrad` command's
# --help) does not import torch until something needs it. Add new public names here.
__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    submodules=(
        "baselines",
        "control_variates",
        "core",
        "diagnostics",
        "graphs",
        "problems",
        "sampling",
    ),
    names={
        ".dice": ("magic_box",),
        ".estimate": ("GradientEstimate", "estimate_grad", "expectation", "score"),
        ".errors": (
            "ScoregradError",
            "FunctionOutputError",
            "ParameterError",
            "EstimatorNotApplicable",
            "SampleSizeError",
            "ControlVariateError",
            "RemoteEvaluationError",
        ),
        ".core.parallel": ("Remote",),
        ".core.family": ("Family",),
        ".prepared": (
            "PreparedEstimate",
            "PreparedExpectation",
            "prepare",
            "prepare_expectation",
        ),
        ".estimators": (
            "Estimator",
            "ScoreFunction",
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
            "ARSM",
            "RaoBlackwellReinforce",
            "UnorderedSet",
            "GumbelRao",
            "Auto",
            "AutoReport",
        ),
    },
)

__version__ = "0.1.0"
