"""Errors raised by ``scoregrad.vi``; each is a ``scoregrad.ScoregradError`` whose message names the
problem and the fix."""

from __future__ import annotations

from ..errors import FunctionOutputError, ScoregradError

__all__ = ["SupportMismatchError", "DataFileError", "LogJointError"]


class SupportMismatchError(ScoregradError):
    """The guide puts mass where the model's latent variable cannot live (e.g. a Normal guide for a
    probability)."""


class DataFileError(ScoregradError):
    """A data file is missing or does not hold what the loader expects."""


class LogJointError(FunctionOutputError):
    """The log joint returned NaN, the wrong shape, or something that is not numeric."""
