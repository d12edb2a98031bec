"""Many random choices: stochastic computation graphs, each choice with its own estimator.

A model is a function of a graph context ``g``: it draws choices with ``g.sample(name, dist,
estimator)`` (plain ``torch.distributions`` in, plain tensors out) and declares costs with
``g.cost(name, value)``; costs may come from a black box downstream of the choices. Each choice's
estimator multiplies only the costs that depend on it (causality) and, inside plates, only its own
element's cost. Two doors: ``expectation`` (a DiCE surrogate for training loops) and
``estimate_grad`` (a ``GradientEstimate`` with standard errors per parameter). See docs/graphs.md.

>>> import torch, scoregrad as sg
>>> from torch.distributions import Bernoulli
>>> enc1, enc2 = torch.zeros(4, requires_grad=True), torch.nn.Linear(4, 4)
>>> def model(g):
...     z1 = g.sample("z1", Bernoulli(logits=enc1), sg.DisARM())
...     z2 = g.sample("z2", Bernoulli(logits=enc2(z1)),
...                   sg.ScoreFunction(sg.baselines.LeaveOneOut()))
...     g.cost("rec", ((z2 - 0.3) ** 2).sum(-1))
>>> loss = sg.graphs.expectation(model, n=8, seed=0)
>>> loss.backward(); enc1.grad.shape, enc2.weight.grad.shape
(torch.Size([4]), torch.Size([4, 4]))
"""

from .doors import estimate_grad, expectation
from .graph import Choice, Cost, Graph, GraphError
from .rules import ChoiceRule, needs, register_choice_rule
from .structure import Structure
from .surrogate import Execution, execute

__all__ = [
    "Graph",
    "GraphError",
    "Choice",
    "Cost",
    "ChoiceRule",
    "register_choice_rule",
    "needs",
    "Structure",
    "Execution",
    "execute",
    "expectation",
    "estimate_grad",
]
