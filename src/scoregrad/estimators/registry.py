"""The registry of estimators: each estimator class registers itself under its snake_case name.

Like ``torch.distributions.kl.register_kl``, registration is a class decorator, so a new estimator
(in scoregrad or in a user's package) becomes known to error messages, ``applicable`` and the
diagnostics by being defined:

    @register_estimator
    class MyEstimator(Estimator):
        name = "my_estimator"
        ...

``applicable(dist)`` asks every registered estimator's ``supports(dist)`` (on a default instance)
and returns the names of those that apply; ``EstimatorNotApplicable`` messages list them.

>>> import torch, scoregrad as sg
>>> from torch.distributions import Bernoulli, Normal
>>> "disarm" in applicable(Bernoulli(logits=torch.zeros(3))), "disarm" in applicable(Normal(0.0, 1.0))
(True, False)
>>> registered()["score_function"] is sg.ScoreFunction
True
"""

from __future__ import annotations

import difflib
import re

__all__ = [
    "register_estimator",
    "unregister_estimator",
    "registered",
    "applicable",
    "estimator_class",
    "default_instance",
]

_REGISTRY: dict[str, type] = {}
_DEFAULTS: dict[str, object] = {}
_SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


def register_estimator(cls: type) -> type:
    """Class decorator: register ``cls`` under ``cls.name`` (snake_case, unique)."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not _SNAKE.match(name):
        raise ValueError(
            f"{cls.__name__}.name must be a snake_case string such as 'score_function' to be "
            f"registered, got {name!r}."
        )
    other = _REGISTRY.get(name)
    if other is not None and other.__qualname__ != cls.__qualname__:
        raise ValueError(f"the estimator name {name!r} is taken by {other.__qualname__}.")
    _REGISTRY[name] = cls
    _DEFAULTS.pop(name, None)
    return cls


def registered() -> dict[str, type]:
    """{name: class} of every registered estimator, in registration order (importing
    ``scoregrad.estimators``, which any import of this module does first, registers the built-ins)."""
    return dict(_REGISTRY)


def estimator_class(name: str) -> type | None:
    """The registered class called ``name`` (also accepting the class name, e.g. 'DisARM')."""
    table = registered()
    if name in table:
        return table[name]
    for cls in table.values():
        if cls.__name__ == name:
            return cls
    return None


def close_names(name: str) -> list[str]:
    """Registered names that look like ``name`` (for 'did you mean' hints)."""
    return difflib.get_close_matches(str(name).lower(), registered(), n=2)


def default_instance(name: str):
    """A shared default-constructed instance of a registered estimator (used only to ask
    ``supports``, which never changes an estimator)."""
    if name not in _DEFAULTS:
        _DEFAULTS[name] = registered()[name]()
    return _DEFAULTS[name]


def applicable(dist) -> list[str]:
    """Names of the registered estimators whose ``supports(dist)`` is None, i.e. that apply."""
    return [name for name in registered() if default_instance(name).supports(dist) is None]


def unregister_estimator(name: str) -> None:
    """Remove a registered estimator (for plug-ins that are unloaded, and tests)."""
    _REGISTRY.pop(name, None)
    _DEFAULTS.pop(name, None)
