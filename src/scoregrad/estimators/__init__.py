"""Gradient estimators, one module per family, all honouring ``estimators.base.Estimator``."""

from .arm import ARM, DisARM
from .base import Contributions, Estimator
from .multisample import RLOO, VIMCO
from .rebar import REBAR, RELAX
from .score_function import ScoreFunction

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
]
