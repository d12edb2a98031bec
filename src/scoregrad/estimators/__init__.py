"""Gradient estimators, one module per family, all honouring ``estimators.base.Estimator``."""

from .arm import ARM, DisARM
from .base import Contributions, Estimator
from .enumerate import Enumerate
from .measure_valued import MeasureValued, register_mvd
from .multisample import RLOO, VIMCO
from .pathwise import Pathwise
from .rebar import REBAR, RELAX
from .relaxed import GumbelSoftmax, StraightThrough
from .score_function import ScoreFunction

__all__ = [
    "Contributions",
    "Estimator",
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
]
