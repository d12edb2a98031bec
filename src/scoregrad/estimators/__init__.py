"""Gradient estimators, one module per family, all honouring ``estimators.base.Estimator``."""

from .base import Contributions, Estimator
from .score_function import ScoreFunction

__all__ = ["Contributions", "Estimator", "ScoreFunction"]
