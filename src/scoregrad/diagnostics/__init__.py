"""Tools built on the estimators: side-by-side comparison, the catalogue of problems with exact
answers, the demo and their plots. ``scoregrad compare`` and ``scoregrad demo`` live here."""

from . import problems
from .compare import *  # noqa: F403
from .compare import __all__ as _compare_all

__all__ = ["problems", *_compare_all]
