"""Which choices each cost depends on, and how plate axes line up between them.

For a cost k and a choice c that k depends on, each plate p that both are in is either
*element-wise* (element i of k depends only on element i of c) or *collapsed*: some choice on a
path from c to k lies outside p, so every element of k may depend on every element of c. Plates
of c that k is not in are summed; plates of k that c is not in are broadcast. This is the
Rao-Blackwellisation of Pyro's ``TraceGraph_ELBO`` (its ``_compute_downstream_costs``), derived from
the recorded dependence instead of from a dense trace.

``Structure(graph, causal=False, plates=False)`` switches the two reductions off (every cost
depends on every choice, every plate collapsed): the same estimator without its structure, for
measuring what the structure buys.
"""

from __future__ import annotations

import torch

from .graph import Graph

__all__ = ["Structure", "align"]


def align(
    t: torch.Tensor, src: tuple[str, ...], dst: tuple[str, ...], keep: set[str], order: list[str]
) -> torch.Tensor:
    """Map t (N, *src plate axes) onto dst's plate axes: src plates not kept are summed, dst plates
    missing from the result get a singleton axis (to broadcast). ``keep`` are the element-wise
    plates; all plate tuples follow ``order`` (declaration order)."""
    kept = [p for p in src if p in dst and p in keep]
    drop = [1 + i for i, p in enumerate(src) if p not in kept]
    if drop:
        t = t.sum(drop)
    shape = [t.shape[0]]
    it = iter(t.shape[1:])
    for p in dst:
        shape.append(next(it) if p in kept else 1)
    return t.reshape(shape)


class Structure:
    """Ancestors and element-wise plates of every node of one execution."""

    def __init__(self, graph: Graph, causal: bool = True, plates: bool = True):
        self.graph = graph
        self.causal = causal
        self.use_plates = plates
        self.order = list(graph.plates)
        self._anc: dict[str, frozenset[str]] = {}
        for name, c in graph.choices.items():  # in program order: parents come first
            self._anc[name] = self._closure(c.parents)
        for name, k in graph.costs.items():
            self._anc[name] = self._closure(k.parents) if causal else frozenset(graph.choices)

    def _closure(self, parents) -> frozenset[str]:
        out = set(parents)
        for p in parents:
            out |= self._anc[p]
        return frozenset(out)

    def ancestors(self, node: str) -> frozenset[str]:
        """The choices ``node`` (a choice or a cost) depends on."""
        return self._anc[node]

    def elementwise(self, choice: str, node: str) -> set[str]:
        """Plates shared by ``choice`` and ``node`` along which the dependence is element-wise."""
        if not self.use_plates:
            return set()
        g = self.graph
        target = g.choices.get(node) or g.costs[node]
        shared = set(g.choices[choice].plates) & set(target.plates)
        out = set()
        for p in shared:
            # collapsed if some ancestor of node that descends from (or is) choice lies outside p
            path = [
                m for m in self._anc[node]
                if (m == choice or choice in self._anc[m]) and p not in g.choices[m].plates
            ]  # fmt: skip
            if not path:
                out.add(p)
        return out

    def downstream(self, choice: str) -> torch.Tensor:
        """Σ of the costs that depend on ``choice``, on the choice's plate axes: (N, *plates)."""
        g = self.graph
        c = g.choices[choice]
        total = None
        for name, k in g.costs.items():
            if choice not in self._anc[name]:
                continue
            keep = self.elementwise(choice, name)
            term = align(k.value, k.plates, c.plates, keep, self.order)
            total = term if total is None else total + term
        shape = (g.n, *(g.plates[p] for p in c.plates))
        if total is None:
            ref = c.log_prob if c.log_prob is not None else c.value
            return torch.zeros(shape, dtype=_float(ref), device=c.value.device)
        return total.expand(shape)

    def is_separable(self, choice: str) -> bool:
        """Whether every cost depending on ``choice`` does so element-wise along all its plates (so
        all plate elements of the choice can be replaced at once in a re-execution)."""
        c = self.graph.choices[choice]
        for name in self.graph.costs:
            if choice in self._anc[name] and self.elementwise(choice, name) != set(c.plates):
                return False
        return True


def _float(t: torch.Tensor) -> torch.dtype:
    return t.dtype if t.is_floating_point() else torch.get_default_dtype()
