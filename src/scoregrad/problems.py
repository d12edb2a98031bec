"""The catalogue of problems with exact answers, under its public name ``scoregrad.problems``.

The implementation lives with the other tools in ``scoregrad.diagnostics.problems``.
"""

from .diagnostics.problems import *  # noqa: F403
from .diagnostics.problems import __all__  # noqa: F401
