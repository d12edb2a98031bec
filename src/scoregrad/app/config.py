"""A run's settings and the rules of a resume.

Every run saves its full configuration (a dict of every setting) in its checkpoint. A resume
continues *that* run, so it uses the saved settings; the options a user types on resume are
compared with them (``reconcile``):

* a **budget** (episodes, env steps, optimiser steps) given explicitly extends the run; not given,
  the saved budget stays;
* a **fixed** setting (what the saved state was built from: the environment, network sizes, the
  baseline, the seed) cannot change: the resume is refused, naming each option;
* any other **setting** that differs is refused too, naming each (``--lr 0.01 (saved 0.003)``),
  unless ``allow_changes``: then it is applied and returned, for the run to log.

Each application declares which of its settings are budgets and which are fixed, on its config
class (``ResumePolicy``), so this module needs no table of names.

>>> policy = ResumePolicy(budget=("episodes",), fixed=("seed",))
>>> saved = {"episodes": 300, "lr": 0.003, "seed": 0}
>>> reconcile(saved, {"episodes": 500}, policy)[0]
{'episodes': 500, 'lr': 0.003, 'seed': 0}
>>> try:
...     reconcile(saved, {"lr": 0.01}, policy)
... except ConfigChangeError as e:
...     print(e.changes[0].option)
--lr 0.01 (saved 0.003)
>>> reconcile(saved, {"lr": 0.01}, policy, allow_changes=True)[1]
[Change(name='lr', given=0.01, saved=0.003, flag='--lr')]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import ScoregradError

__all__ = ["Change", "ConfigChangeError", "ResumePolicy", "reconcile", "flag_of"]


def flag_of(name: str) -> str:
    """The command-line spelling of a setting: ``max_grad_norm`` -> ``--max-grad-norm``."""
    return "--" + name.replace("_", "-")


def _show(v) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(_show(x) for x in v)
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "on" if v else "off"
    return str(v)


@dataclass(frozen=True)
class Change:
    """One setting given on resume that differs from the saved run's."""

    name: str
    given: object
    saved: object
    flag: str = ""

    @property
    def option(self) -> str:
        return f"{self.flag or flag_of(self.name)} {_show(self.given)} (saved {_show(self.saved)})"


class ConfigChangeError(ScoregradError):
    """Options given on resume that differ from the saved run's settings."""

    def __init__(self, message: str, changes: list[Change]):
        super().__init__(message)
        self.changes = changes


@dataclass(frozen=True)
class ResumePolicy:
    """What a resume may do with each setting of a config (declared by the config's class).

    ``budget``: settings that a resume may extend. ``fixed``: settings the saved state was built
    from, which no resume can change. ``changeable``: when given, the only settings that
    ``allow_changes`` may change (every other one is fixed). ``flags``: command-line spellings
    that differ from ``--setting-name``.
    """

    budget: tuple[str, ...] = ()
    fixed: tuple[str, ...] = ()
    changeable: tuple[str, ...] | None = None
    flags: Mapping[str, str] = field(default_factory=dict)

    def flag(self, name: str) -> str:
        return self.flags.get(name, flag_of(name))

    def is_fixed(self, name: str) -> bool:
        if name in self.budget:
            return False
        return name in self.fixed or (self.changeable is not None and name not in self.changeable)


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        try:
            return float(a) == float(b)
        except (TypeError, ValueError):
            return False
    return a == b


def reconcile(
    saved: Mapping,
    given: Mapping,
    policy: ResumePolicy,
    *,
    allow_changes: bool = False,
    run: str = "the saved run",
) -> tuple[dict, list[Change]]:
    """The settings a resume runs with, and the changes it accepted (see the module docstring).

    ``given`` holds only the settings the user gave explicitly. Raises ``ConfigChangeError``
    naming every refused option.
    """
    config = dict(saved)
    unknown = [k for k in given if k not in saved]
    fixed, changed, accepted = [], [], []
    for name, value in given.items():
        if name in unknown or _same(value, saved[name]):
            continue
        change = Change(name, value, saved[name], policy.flag(name))
        if name in policy.budget:
            config[name] = value
        elif policy.is_fixed(name):
            fixed.append(change)
        elif allow_changes:
            config[name] = value
            accepted.append(change)
        else:
            changed.append(change)
    for name in unknown:  # settings this version has and the saved run predates: take them
        config[name] = given[name]
    if fixed or changed:
        parts = []
        if fixed:
            parts.append(
                "these settings the saved state was built from, which no resume can change: "
                + ", ".join(c.option for c in fixed)
            )
        if changed:
            parts.append(
                "these settings, which a resume keeps as saved so that the run continues "
                "exactly: " + ", ".join(c.option for c in changed)
            )
        fix = "drop these options to resume the run as saved"
        if changed and not fixed:
            fix += ", pass --allow-changes to continue with them (they are logged in the run)"
        raise ConfigChangeError(
            f"{run} was saved with other settings; the options given differ in "
            + "; and in ".join(parts)
            + f". Fix: {fix}, or start a new run with them (another --out, or --force to "
            "archive the old one).",
            fixed + changed,
        )
    return config, accepted
