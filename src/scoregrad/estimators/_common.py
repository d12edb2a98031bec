"""Former home of the natural-parameter plumbing, kept so older imports keep working.

Import from ``estimators.natural`` (NaturalParams, linear_term, per_item) and
``estimators.applicability`` (unwrap, not_applicable) instead; the applicability table that lived
here is replaced by each estimator's ``supports(dist)`` and ``registry.applicable(dist)``.
"""

from .applicability import not_applicable, unwrap
from .natural import NaturalParams, linear_term, per_item

__all__ = ["NaturalParams", "linear_term", "per_item", "not_applicable", "unwrap"]
