"""The graph context: one execution of a model that makes several random choices.

A *model* is a Python function ``model(g)`` that draws its random choices through
``g.sample(name, dist, estimator)`` and declares what it wants to minimise or maximise through
``g.cost(name, value)``. ``g`` records the choices and costs of one execution (no module-level
store: each execution has its own ``Graph``). Every value carries a leading *sample axis* of size
``g.n``: a distribution built from earlier choices already has it; one that does not depend on any
earlier choice (a *root*) is expanded to it. Where that is inferred (a non-root choice whose batch
shape starts with n, ``expand`` not given), the doors verify it once per call by a probe execution
with another sample size (``surrogate.verify_sample_axis``): a batch axis that only happens to
have size n is refused, not silently taken for the sample axis. ``expand=`` skips the probe.

Structure, as in a stochastic computation graph (Schulman et al. 2015):

* **dependence**: by default a choice or a cost depends on every choice sampled before it (program
  order); ``depends_on=("z1",)`` narrows this to the listed choices (and their own ancestors).
* **plates**: ``g.plate("data", B)`` declares an axis of conditionally independent elements. A
  choice or cost ``in plates=("data",)`` has that axis right after the sample axis (in declaration
  order for several plates): element i of a cost then depends only on element i of the choices in
  the same plate.

Re-execution (for estimators that need the downstream cost at other values of a choice) runs the
same model with a larger sample axis, earlier choices *replayed* and one choice *intervened on*.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
import torch.distributions as D

from ..errors import ScoregradError

__all__ = ["Graph", "Choice", "Cost", "GraphError"]


class GraphError(ScoregradError):
    """A model's graph is malformed: a repeated name, an undeclared plate, a shape that does not
    match the sample axis and plates."""


@dataclass
class Choice:
    """One random choice of an execution: its distribution (batch shape (N, *plates, *rest)), the
    value drawn (N, *plates, *rest, *event), its estimator and the rule that handles it."""

    name: str
    dist: D.Distribution
    value: torch.Tensor
    estimator: object
    rule: object
    plates: tuple[str, ...]
    parents: frozenset[str]
    order: int
    context: torch.Tensor | None = None
    state: object = None
    log_prob: torch.Tensor | None = None  # (N, *plate sizes), summed over the rest

    @property
    def base(self) -> D.Distribution:
        d = self.dist
        while isinstance(d, D.Independent):
            d = d.base_dist
        return d


@dataclass
class Cost:
    """A cost term of shape (N, *plate sizes)."""

    name: str
    value: torch.Tensor
    plates: tuple[str, ...]
    parents: frozenset[str]
    order: int


@dataclass
class Graph:
    """Records the choices and costs of one execution of a model (see the module docstring).

    ``replay`` maps choice names to values to reuse (shape (N, ...)), ``intervene`` one choice to
    the values to force; in a re-execution (``rerun=True``) every other choice is drawn plainly.
    """

    n: int
    replay: dict[str, torch.Tensor] = field(default_factory=dict)
    rerun: bool = False
    #: the choice replayed at relaxed values in (0, 1) (REBAR's re-execution), if any
    relaxed: str | None = None
    choices: dict[str, Choice] = field(default_factory=dict)
    costs: dict[str, Cost] = field(default_factory=dict)
    plates: dict[str, int] = field(default_factory=dict)
    #: choices whose leading batch axis was taken for the sample axis by its size alone
    inferred_axis: list[str] = field(default_factory=list)
    _order: int = 0

    # -- declarations ----------------------------------------------------------------------------
    def plate(self, name: str, size: int) -> str:
        """Declare a plate (an axis of conditionally independent elements) and return its name."""
        if not isinstance(size, int) or size < 1:
            raise GraphError(f"plate {name!r} needs a positive integer size, got {size!r}.")
        if name in self.plates and self.plates[name] != size:
            raise GraphError(
                f"plate {name!r} was declared with size {self.plates[name]}, now {size}; a plate "
                "has one size per execution."
            )
        self.plates[name] = size
        return name

    def _plates(self, plates, what: str) -> tuple[str, ...]:
        plates = (plates,) if isinstance(plates, str) else tuple(plates)
        order = list(self.plates)
        for p in plates:
            if p not in self.plates:
                raise GraphError(
                    f"{what} is in plate {p!r}, which was not declared. Fix: call "
                    f"g.plate({p!r}, size) before using it."
                )
        if [order.index(p) for p in plates] != sorted(order.index(p) for p in plates):
            raise GraphError(
                f"{what} lists plates {plates} out of their declaration order {tuple(order)}; "
                "the axes must follow the order in which the plates were declared."
            )
        return plates

    def _parents(self, depends_on, what: str) -> frozenset[str]:
        if depends_on is None:
            return frozenset(self.choices)
        names = (depends_on,) if isinstance(depends_on, str) else tuple(depends_on)
        for name in names:
            if name not in self.choices:
                raise GraphError(
                    f"{what} depends on {name!r}, which is not a choice made before it. Choices "
                    f"so far: {list(self.choices)}."
                )
        return frozenset(names)

    def _check_name(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise GraphError(f"names of choices and costs must be non-empty strings, got {name!r}.")
        if name in self.choices or name in self.costs:
            raise GraphError(
                f"the name {name!r} is used twice in one execution; give each choice and each "
                "cost its own name."
            )

    def _per_sample(self, dist: D.Distribution, parents, expand, name: str) -> D.Distribution:
        """``dist`` with the sample axis first: expanded if it lacks it (always for a root)."""
        batch = tuple(dist.batch_shape)
        has_axis = bool(batch) and batch[0] == self.n and bool(parents)
        if expand is not None:
            has_axis = not expand
        elif has_axis:
            self.inferred_axis.append(name)
        if has_axis:
            return dist
        try:
            return dist.expand((self.n, *batch))
        except (NotImplementedError, RuntimeError) as e:
            raise GraphError(
                f"choice {name!r}: {type(dist).__name__} cannot be expanded over the sample axis "
                f"({e}); build it with a leading axis of size g.n instead."
            ) from e

    # -- the model's calls -----------------------------------------------------------------------
    def sample(
        self,
        name: str,
        dist: D.Distribution,
        estimator=None,
        *,
        plates=(),
        depends_on=None,
        context: torch.Tensor | None = None,
        expand: bool | None = None,
    ) -> torch.Tensor:
        """Draw choice ``name`` from ``dist`` and return its value, shape (n, *batch, *event).

        Args:
            estimator: how the gradient flows through this choice (default ``ScoreFunction()``);
                see ``scoregrad.graphs.rules`` for the estimators a graph accepts.
            plates: the plates this choice is in (its leading axes after the sample axis).
            depends_on: the choices it depends on (default: all earlier ones).
            context: the input of a learned baseline (NVIL), e.g. the encoder's input.
            expand: force (True) or forbid (False) expanding ``dist`` over the sample axis; by
                default a distribution whose batch shape starts with n and that has earlier
                choices is taken to carry the sample axis already (verified by a probe).
        """
        from .rules import rule_for

        self._check_name(name)
        if not isinstance(dist, D.Distribution):
            raise GraphError(
                f"choice {name!r} needs a torch.distributions.Distribution, got "
                f"{type(dist).__name__}."
            )
        plates = self._plates(plates, f"choice {name!r}")
        parents = self._parents(depends_on, f"choice {name!r}")
        estimator, rule = rule_for(estimator, dist)
        dist = self._per_sample(dist, parents, expand, name)
        sizes = tuple(self.plates[p] for p in plates)
        lead = tuple(dist.batch_shape[1 : 1 + len(plates)])
        if lead != sizes:
            raise GraphError(
                f"choice {name!r} is in plates {plates} of sizes {sizes}, but its distribution's "
                f"batch shape {tuple(dist.batch_shape)} does not start with (n, {', '.join(map(str, sizes))}). "
                "Put the plate axes right after the sample axis."
            )
        state = None
        if name in self.replay:
            value = self.replay[name]
            want = (self.n, *dist.batch_shape[1:], *dist.event_shape)
            if tuple(value.shape) != want:
                raise GraphError(
                    f"choice {name!r} changed shape between executions of the model ({tuple(value.shape)} "
                    f"replayed, {want} now); a model must make the same choices each time it runs."
                )
        elif self.rerun:
            with torch.no_grad():
                value = rule.redraw(estimator, dist)
        else:
            value, state = rule.draw(estimator, dist)
        choice = Choice(
            name, dist, value, estimator, rule, plates, parents, self._order, context, state
        )
        self._order += 1
        self.choices[name] = choice
        return value

    def cost(self, name: str, value, *, plates=(), depends_on=None) -> None:
        """Add a cost term: a tensor of shape (n, *plate sizes), one value per sample (and plate
        element). Costs keep their graph: parameters they use directly get pathwise gradients."""
        self._check_name(name)
        plates = self._plates(plates, f"cost {name!r}")
        parents = self._parents(depends_on, f"cost {name!r}")
        value = torch.as_tensor(value)
        want = (self.n, *(self.plates[p] for p in plates))
        if tuple(value.shape) != want:
            if value.numel() == math.prod(want) and value.dim() > len(want):
                hint = " (drop the trailing axis, e.g. .squeeze(-1))"
            elif plates == () and value.dim() > 1:
                hint = " (sum over the non-sample axes, or declare them as plates)"
            else:
                hint = ""
            raise GraphError(
                f"cost {name!r} has shape {tuple(value.shape)}; it must have shape {want}: the "
                f"sample axis, then one axis per plate {plates}{hint}."
            )
        if not value.is_floating_point():
            value = value.to(torch.get_default_dtype())
        self.costs[name] = Cost(name, value, plates, parents, self._order)
        self._order += 1

    def log_prob(self, name: str) -> torch.Tensor:
        """log q of choice ``name`` at its value, summed to its plate axes: (n, *plate sizes), for
        the -log q terms of an ELBO. Detached unless the choice is reparameterised: its expected
        gradient is zero, and the choice's estimator already carries the gradient through q (so
        the variance drops; first derivatives only: for higher ones use ``dist.log_prob``)."""
        if name not in self.choices:
            raise GraphError(
                f"g.log_prob({name!r}): no such choice yet; made so far: {list(self.choices)}."
            )
        c = self.choices[name]
        dist = c.dist
        if name == self.relaxed:  # log q at a relaxed value: the family's formula, unvalidated
            dist = _unvalidated(dist)
        lp = dist.log_prob(c.value)
        keep = 1 + len(c.plates)
        lp = lp.sum(tuple(range(keep, lp.dim()))) if lp.dim() > keep else lp
        return lp if c.rule.reparameterised else lp.detach()

    def check_finite(self, total: torch.Tensor) -> None:
        """Raise naming the costs with non-finite values if ``total`` (their sum) is not finite
        (one check per execution, not one per cost)."""
        if bool(torch.isfinite(total).all()):
            return
        bad = [k for k, c in self.costs.items() if not bool(torch.isfinite(c.value.detach()).all())]
        raise GraphError(
            f"cost(s) {bad} have non-finite values (NaN or inf); guard logs and divisions in the "
            "model so every cost is finite on the whole support of its choices."
        )


def _unvalidated(dist: D.Distribution) -> D.Distribution:
    """A copy of ``dist`` (and of the distributions it wraps) that skips the support check: the
    per-object switch, never torch's process-wide default."""
    dist = copy.copy(dist)
    dist._validate_args = False
    if isinstance(getattr(dist, "base_dist", None), D.Distribution):
        dist.base_dist = _unvalidated(dist.base_dist)
    return dist
