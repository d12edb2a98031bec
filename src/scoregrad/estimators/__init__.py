"""Gradient estimators, one module per family, all honouring ``estimators.base.Estimator``."""

from . import categorical_relax  # noqa: F401  (registers the Categorical REBAR/RELAX relaxation)
from .arm import ARM, DisARM
from .arsm import ARSM
from .base import Contributions, Estimator
from .gumbel_rao import GumbelRao
from .measure_valued import MeasureValued, register_mvd
from .multisample import RLOO, VIMCO
from .pathwise import Pathwise
from .rao_blackwell import RaoBlackwellReinforce
from .rebar import REBAR, RELAX
from .relaxed import GumbelSoftmax, StraightThrough
from .score_function import ScoreFunction
from .unordered_set import UnorderedSet

__all__ = [
    "Contributions",
    "Estimator",
    "ScoreFunction",
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
]
