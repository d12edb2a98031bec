"""Exceptions raised by scoregrad. Each message names the problem and the fix."""

from __future__ import annotations


class ScoregradError(ValueError):
    """Base class of every error scoregrad raises on bad input."""


class FunctionOutputError(ScoregradError):
    """f returned values of the wrong shape, or non-finite values."""


class ParameterError(ScoregradError):
    """A parameter is not a floating tensor that requires grad, or builds an invalid distribution."""


class EstimatorNotApplicable(ScoregradError):
    """The chosen estimator cannot be used with this distribution or function."""


class SampleSizeError(ScoregradError):
    """n is too small for the requested estimator (e.g. leave-one-out needs two units)."""


class ControlVariateError(ScoregradError):
    """A control variate is malformed (e.g. its mean has the wrong shape)."""


class RemoteEvaluationError(ScoregradError):
    """Evaluating f on an executor failed after its retries (or the executor died and could not be
    rebuilt); nothing partial is returned, and the message says how many samples were lost."""


class StateError(ScoregradError):
    """A saved state does not fit the object it is loaded into (e.g. a different network)."""
