"""Lazy package exports (PEP 562): a package names what it exports and where each name lives,
and a name's module is imported on first use. ``import scoregrad`` then costs nothing until an
estimator is used, which keeps ``scoregrad --help`` from importing torch.

>>> import types
>>> getattr_, dir_, all_ = lazy_exports("json", names={".decoder": ("JSONDecodeError",)})
>>> getattr_("JSONDecodeError").__name__, all_
('JSONDecodeError', ['JSONDecodeError'])
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping, Sequence

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str,
    *,
    submodules: Sequence[str] = (),
    names: Mapping[str, Sequence[str]] | None = None,
    star: Sequence[str] = (),
):
    """``(__getattr__, __dir__, __all__)`` for ``package``'s ``__init__``.

    ``submodules``: sub-modules exported under their own name; ``names``: relative module ->
    the names it exports; ``star``: relative modules whose ``__all__`` is exported whole
    (imported when one of their names is first asked for; the package then defines no static
    ``__all__``).

    A name must not also be a sub-module's name (``rl.evaluate`` the function and
    ``rl/evaluate.py``): importing the sub-module would rebind the package attribute to it.
    """
    where = {n: mod for mod, ns in (names or {}).items() for n in ns}
    listed = [*submodules, *where]

    def _star_names() -> list[str]:
        out = []
        for mod in star:
            out += list(importlib.import_module(mod, package).__all__)
        return out

    def __getattr__(name: str):
        if name in submodules:
            return importlib.import_module(f"{package}.{name}")
        if name in where:
            value = getattr(importlib.import_module(where[name], package), name)
        elif name == "__all__" and star:
            value = listed + _star_names()
        else:
            for mod in star:
                m = importlib.import_module(mod, package)
                if name in m.__all__:
                    value = getattr(m, name)
                    break
            else:
                raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)  # later look-ups are plain attributes
        return value

    def __dir__():
        return sorted(set(vars(sys.modules[package])) | set(listed))

    return __getattr__, __dir__, listed
