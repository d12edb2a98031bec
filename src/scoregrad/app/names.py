"""Names spelled one way: canonical kebab-case names of one kind (baselines, estimators), the old
spellings accepted as aliases (with a note), and unknown names answered with the valid ones.

>>> baselines = Names("baseline", ["none", "moving-average", "loo"], {"ma": "moving-average"})
>>> baselines.resolve("moving_average", note=None), baselines.resolve("loo")
('moving-average', 'loo')
>>> try:
...     baselines.resolve("avg")
... except UnknownNameError as e:
...     print(e)
unknown baseline 'avg'. Fix: use one of none, moving-average, loo.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence

from ..errors import ScoregradError

__all__ = ["Names", "UnknownNameError"]


class UnknownNameError(ScoregradError):
    """A name (of a baseline, estimator, ...) that is not one of the valid ones."""


def _warn(message: str) -> None:
    warnings.warn(message, FutureWarning, stacklevel=4)


class Names:
    """Canonical names of one kind and the old spellings they replace (see the module doc).

    Snake-case spellings of kebab-case names are accepted as aliases automatically.
    """

    def __init__(
        self, kind: str, canonical: Sequence[str], aliases: Mapping[str, str] | None = None
    ):
        self.kind = kind
        self.canonical = list(canonical)
        self.aliases = dict(aliases or {})
        for name in self.canonical:
            if "-" in name:
                self.aliases.setdefault(name.replace("-", "_"), name)

    def resolve(
        self, name: str, *, option: str | None = None, note: Callable[[str], None] | None = _warn
    ) -> str:
        """The canonical spelling of ``name``; an alias is reported through ``note``."""
        name = str(name).strip()
        if name in self.canonical:
            return name
        if name in self.aliases:
            new = self.aliases[name]
            if note is not None:
                note(f"{self.kind} {name!r} is a deprecated spelling of {new!r}; use {new!r}.")
            return new
        where = f"{option}: " if option else ""
        raise UnknownNameError(
            f"{where}unknown {self.kind} {name!r}. Fix: use one of {', '.join(self.canonical)}."
        )

    def resolve_list(self, text: str, *, option: str | None = None, note=_warn) -> list[str]:
        """A comma-separated list of names, each resolved."""
        names = [
            self.resolve(n, option=option, note=note) for n in str(text).split(",") if n.strip()
        ]
        if not names:
            where = f"{option}: " if option else ""
            raise UnknownNameError(
                f"{where}no {self.kind} given. Fix: use one or more of {', '.join(self.canonical)}."
            )
        return names

    def __iter__(self):
        return iter(self.canonical)

    def __contains__(self, name) -> bool:
        return name in self.canonical or name in self.aliases

    def __len__(self) -> int:
        return len(self.canonical)
