"""Tools built on the estimators: side-by-side comparison (``comparison.py``), the catalogue of
problems with exact answers, the demo and their plots. ``scoregrad compare`` and ``scoregrad demo``
live here. Names are imported on first use, so ``scoregrad compare --help`` needs no torch."""

from ..app.lazy import lazy_exports

__getattr__, __dir__, _listed = lazy_exports(
    __name__, submodules=("problems",), star=(".comparison",)
)
