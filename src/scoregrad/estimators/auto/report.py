"""What ``Auto`` reports: the pilot's table (``PilotRow`` per candidate) and the choice
(``AutoReport``, on ``GradientEstimate.auto`` and ``Auto.report``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["AutoReport", "PilotRow"]


@dataclass
class PilotRow:
    """One candidate's pilot: units and evaluations spent, CPU seconds, variance per unit (trace
    over the gradient's components) with its standard error, cost per unit, and their product."""

    estimator: str
    units: int = 0
    evals: int = 0
    seconds: float = 0.0
    variance: float = math.nan
    variance_se: float = math.nan
    cost: float = math.nan
    work: float = math.nan
    biased: bool = False
    status: str = ""  # "chosen", "kept", "eliminated", or why it did not run

    def as_dict(self) -> dict:
        return dict(vars(self))


@dataclass
class AutoReport:
    """What ``Auto`` chose and why: the pilot's table, its cost, the budget it left.

    ``pilot_share`` is the pilot's evaluations of f over all evaluations of the calls it has
    served so far (``Auto`` keeps it at most ``pilot_share`` of the budget); ``pilot_seconds`` its
    CPU time; ``calls`` those calls (in estimate_grad: 1 for the call that ran the pilot, then one
    more for each call that reused its choice). ``race`` lists this call's counted race chunks
    (estimator, evaluations of f): part of the estimate, not the pilot. ``revisits``: the pilots
    before this one.
    """

    choice: str
    reason: str
    cost: str
    rows: list[PilotRow] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    pilot_evals: int = 0
    total_evals: int = 0
    pilot_seconds: float = 0.0
    revisits: int = 0
    race: list[tuple[str, int]] = field(default_factory=list)
    calls: int = 1

    @property
    def pilot_share(self) -> float:
        return self.pilot_evals / self.total_evals if self.total_evals else 0.0

    def table(self) -> str:
        """The pilot as plain text, best first."""
        head = f"{'estimator':<48} {'units':>6} {'evals':>6} {'var/unit':>10} {'cost/unit':>10} "
        head += f"{'var×cost':>10}  status"
        lines = [head]
        for r in sorted(self.rows, key=lambda r: (math.isnan(r.work), r.work)):
            lines.append(
                f"{r.estimator:<48} {r.units:>6} {r.evals:>6} {r.variance:>10.4g} "
                f"{r.cost:>10.4g} {r.work:>10.4g}  {r.status}"
            )
        lines += [f"{name:<48} not a candidate: {why}" for name, why in self.skipped.items()]
        lines.append(
            f"choice: {self.choice} ({self.reason}); pilot {self.pilot_evals} of "
            f"{self.total_evals} evaluations ({100 * self.pilot_share:.1f}%)"
        )
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {
            "choice": self.choice, "reason": self.reason, "cost": self.cost,
            "rows": [r.as_dict() for r in self.rows], "skipped": dict(self.skipped),
            "pilot_evals": self.pilot_evals, "total_evals": self.total_evals,
            "pilot_share": self.pilot_share, "pilot_seconds": self.pilot_seconds,
            "revisits": self.revisits, "race": [list(r) for r in self.race], "calls": self.calls,
        }  # fmt: skip

    def as_state(self) -> dict:
        """Plain data that ``from_state`` rebuilds the report from (an ``Auto`` state_dict)."""
        state = self.as_dict()
        del state["pilot_share"]  # (derived)
        return state

    @classmethod
    def from_state(cls, state: dict) -> AutoReport:
        fields = dict(state)
        fields["rows"] = [PilotRow(**r) for r in state["rows"]]
        fields["race"] = [tuple(r) for r in state["race"]]
        return cls(**fields)
