"""Black-box variational inference with score-function (and other) ELBO gradients.

See ``scoregrad.vi.elbo`` for the estimators, ``scoregrad.vi.fit`` (in ``vi/training.py``) for the
training loop, ``scoregrad.vi.models`` for the models and ``docs/vi.md`` for measured results.

Names are imported on first use, so ``scoregrad vi --help`` needs no torch.
"""

from ..app.lazy import lazy_exports

__getattr__, __dir__, _listed = lazy_exports(
    __name__,
    star=(".elbo",),
    names={
        ".training": ("fit", "FitResult", "plot_history", "plot_comparison"),
        ".guides": (
            "Guide",
            "MeanFieldNormal",
            "BetaGuide",
            "MeanFieldBernoulli",
            "MeanFieldCategorical",
        ),
        ".errors": ("SupportMismatchError", "DataFileError", "LogJointError"),
    },
)
