"""Exceptions raised by scoregrad. Each message names the problem and the fix.

Every class derives from ``ScoregradError`` (itself a ``ValueError``), so ``except
sg.ScoregradError`` catches all of them:

=========================  ==========================================================================
class                      raised when
=========================  ==========================================================================
FunctionOutputError        f returned None, complex, non-numeric, non-finite or wrongly shaped values
ParameterError             a parameter is not a floating tensor that requires grad, is float16 or
                           bfloat16, mixes devices or dtypes with the others, or builds an invalid
                           distribution
SupportError               a point handed to ``score`` lies outside the distribution's support
EstimatorNotApplicable     the estimator cannot be right for this distribution, f or door
SampleSizeError            n is not a positive integer, or too small for the estimator
ArgumentError              an argument of the wrong kind (its subclasses say which)
  EstimatorArgumentError   an estimator, baseline, control variate or sampler given as a name or
                           a class instead of an instance
  SeedError                a seed that is not an integer
  BatchSizeError           chunk_size or batch_size that is not a positive integer
  DistributionError        ``expectation`` given something that is not a Distribution
ExecutorError              an executor cannot run what was asked (a gradient through f)
ControlVariateError        a control variate is malformed (e.g. its mean has the wrong shape)
StateError                 a saved state does not fit the object it is loaded into, or a learned
                           state (RELAX's control network) does not fit a new problem's shapes
=========================  ==========================================================================
"""

from __future__ import annotations


class ScoregradError(ValueError):
    """Base class of every error scoregrad raises on bad input."""


class FunctionOutputError(ScoregradError):
    """f returned values of the wrong shape or kind (None, complex, text), or non-finite values."""


class ParameterError(ScoregradError):
    """A parameter is not a floating tensor that requires grad, or builds an invalid distribution."""


class SupportError(ScoregradError):
    """A point lies outside the support of the distribution it is scored under."""


class EstimatorNotApplicable(ScoregradError):
    """The chosen estimator cannot be used with this distribution or function."""


class SampleSizeError(ScoregradError):
    """n is too small for the requested estimator (e.g. leave-one-out needs two units)."""


class ArgumentError(ScoregradError):
    """An argument of the wrong kind or value; the subclasses name which."""


class EstimatorArgumentError(ArgumentError):
    """An estimator, baseline, control variate or sampler passed as a name or a class."""


class SeedError(ArgumentError):
    """A seed that is not an integer."""


class BatchSizeError(ArgumentError):
    """A chunk or batch size that is not a positive integer."""


class DistributionError(ArgumentError, TypeError):
    """Something that is not a ``torch.distributions.Distribution`` where one is needed."""


class ExecutorError(ScoregradError):
    """An executor cannot run what was asked (f's output needs grad, or f must be differentiated)."""


class ControlVariateError(ScoregradError):
    """A control variate is malformed (e.g. its mean has the wrong shape)."""


class RemoteEvaluationError(ScoregradError):
    """Evaluating f on an executor failed after its retries (or the executor died and could not be
    rebuilt); nothing partial is returned, and the message says how many samples were lost."""


class StateError(ScoregradError):
    """A saved state does not fit the object it is loaded into (e.g. a different network), or an
    estimator's learned state does not fit a new problem (RELAX's network, another width)."""
