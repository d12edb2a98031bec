"""``Auto`` (``estimator="auto"``): a short pilot chooses the estimator. ``chooser`` holds the
estimator and its choice, ``pilot`` the candidates' data and plans, ``candidates`` who may run,
``report`` what it says (see ``chooser``'s docstring for the method)."""

from .chooser import Auto
from .report import AutoReport, PilotRow

__all__ = ["Auto", "AutoReport", "PilotRow"]
