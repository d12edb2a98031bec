"""Gradient estimators, one module per family, all honouring ``estimators.base.Estimator``.

Each estimator declares its capabilities (``supports``, ``biased``, ``unit``, ``evals_per_unit``,
``doors``, ...; see ``base``) and registers itself (``registry.register_estimator``), so
``registry.applicable(dist)`` knows which apply to a distribution.
"""

from . import categorical_relax  # noqa: F401  (registers the Categorical REBAR/RELAX relaxation)
from .arm import ARM, DisARM
from .arsm import ARSM
from .auto import Auto, AutoReport, PilotRow
from .base import Contributions, Estimator
from .enumerate import Enumerate
from .gumbel_rao import GumbelRao
from .measure_valued import MeasureValued, register_mvd
from .multisample import RLOO, VIMCO
from .pathwise import Pathwise
from .rao_blackwell import RaoBlackwellReinforce
from .rebar import REBAR, RELAX
from .registry import applicable, register_estimator, registered
from .relaxed import GumbelSoftmax, StraightThrough
from .score_function import ScoreFunction
from .unordered_set import UnorderedSet

__all__ = [
    "Contributions",
    "Estimator",
    "register_estimator",
    "registered",
    "applicable",
    "ScoreFunction",
    "Enumerate",
    "ARM",
    "DisARM",
    "VIMCO",
    "RLOO",
    "REBAR",
    "RELAX",
    "Pathwise",
    "MeasureValued",
    "register_mvd",
    "GumbelSoftmax",
    "StraightThrough",
    "ARSM",
    "RaoBlackwellReinforce",
    "UnorderedSet",
    "GumbelRao",
    "Auto",
    "AutoReport",
    "PilotRow",
]
