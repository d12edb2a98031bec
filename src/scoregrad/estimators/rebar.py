"""REBAR and RELAX: unbiased Bernoulli gradients with a learned, reparameterised control variate.

For b ~ Bernoulli(σ(θ)) write b = H(z) with the logistic reparameterisation z = θ + logit(u),
u ~ U(0, 1), and draw z̃ ~ p(z | b) by the conditional reparameterisation (v ~ U(0, 1))

    z̃ = log(1 + v / ((1 - v)(1 - σ(θ))))  if b = 1,    z̃ = -log(1 + (1 - v) / (v σ(θ)))  if b = 0.

For any differentiable control c_φ(z) the estimator (Grathwohl et al. 2018, eq. 6)

    ĝ = [f(b) - c_φ(z̃)] ∇θ log p(b; θ) + ∇θ c_φ(z) - ∇θ c_φ(z̃)

is unbiased for ∇θ E[f(b)], whatever φ is: E[∇θ c(z)] and E[c(z̃)∇ log p(b) + ∇θ c(z̃)] are both
∇θ E[c(z)]. The control's parameters φ are trained to minimise the estimator's variance with the
single-sample gradient ∂/∂φ E[ĝ²] = E[2 ĝ ∂ĝ/∂φ] (here ĝ is taken with respect to the logits), one
optimiser step after each estimate, so the φ used for a sample never saw it.

* ``REBAR`` (Tucker et al. 2017): c_φ(z) = η f(σ(z/λ)), the continuous relaxation of f itself, with
  learned scale η and temperature λ. f must be differentiable and accept relaxed inputs in (0, 1);
  it costs three evaluations of f per sample (f(b), f(σ(z/λ)), f(σ(z̃/λ))).
* ``RELAX`` (Grathwohl, Choi, Wu, Roeder, Duvenaud 2018, "Backpropagation through the Void"):
  c_φ(z) = r_ρ(z) (a neural network, default a small MLP), plus η f(σ(z/λ)) with
  ``relaxed_f=True``. Without the relaxed f it needs one evaluation of f per sample and f may be a
  black box.

The network, η, the temperature and the optimiser all live on the estimator object (``control``,
``eta``, ``log_temperature``, ``optimizer``), and ``state_dict()``/``load_state_dict()`` save and
restore them. With ``item_shape`` in ``scoregrad.expectation`` the control acts per item: the
network sees each item's latent vector and returns one value per item.

>>> import torch, scoregrad as sg
>>> from torch.distributions import Bernoulli
>>> theta = torch.zeros(3, requires_grad=True)
>>> def f(b):                                   # differentiable in b, so REBAR applies
...     return ((b - 0.499) ** 2).sum(-1)
>>> est = sg.estimate_grad(f, lambda theta: Bernoulli(logits=theta), {"theta": theta}, n=4000,
...                        estimator=REBAR(), seed=0)
>>> exact = 0.25 * (1 - 2 * 0.499)
>>> bool(((est.grad["theta"] - exact).abs() < 4.42 * est.stderr["theta"]).all()), est.n_evals
(True, 12000)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.distributions as D
from torch import nn

from ..core.model import SampleModel, refuse_moving_boundary_of
from ..core.shapes import broadcast_rows
from ..core.state import snapshot
from ..errors import ArgumentError, EstimatorNotApplicable, SampleSizeError, StateError
from ._control_net import ItemMLP
from .applicability import not_applicable, unwrap
from .base import Contributions, Estimator
from .natural import NaturalParams, linear_term
from .registry import register_estimator

__all__ = ["RELAX", "REBAR", "register_relaxation"]


def _logits(d: D.Distribution) -> tuple[torch.Tensor]:
    return (d.logits,)


def _clamp01(t: torch.Tensor) -> torch.Tensor:
    eps = torch.finfo(t.dtype).eps
    return t.clamp(eps, 1.0 - eps)


def conditional_logistic(logits: torch.Tensor, b: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """z̃ ~ p(z | b) for z = θ + logit(u), by reparameterisation with v ~ U(0, 1) (differentiable
    in the logits θ)."""
    p = torch.sigmoid(logits)
    q = torch.sigmoid(-logits)  # 1 - p, without cancellation
    z1 = torch.log1p(v / ((1.0 - v) * q))
    z0 = -torch.log1p((1.0 - v) / (v * p))
    return torch.where(b > 0.5, z1, z0)


#: family -> its relaxation: the noise, b = H(z), z, z̃ ~ p(z | b), the relaxed input, the score
_RELAXATIONS: dict[type, object] = {}


def register_relaxation(family: type):
    """Register the relaxation of a discrete ``family`` used by REBAR and RELAX (a class with
    ``noise``, ``hard``, ``z``, ``z_tilde``, ``hard_input``, ``relaxed_input`` and ``score``;
    optionally ``pullback(L, b, v, g_z, g_zt)``, the vector-Jacobian product of z and z̃ in the
    logits written out, which autograd computes otherwise)."""

    def deco(cls):
        _RELAXATIONS[family] = cls()
        return cls

    return deco


def relaxation_of(dist: D.Distribution):
    for cls in type(unwrap(dist)).__mro__:
        if cls in _RELAXATIONS:
            return _RELAXATIONS[cls]
    return None


@register_relaxation(D.Bernoulli)
class BernoulliRelaxation:
    """z = θ + logit(u), b = 1[z > 0]; z̃ by ``conditional_logistic``; relaxed σ(z/λ)."""

    @staticmethod
    def noise(logits):
        dtype, device = logits.dtype, logits.device
        u = _clamp01(torch.rand(logits.shape, dtype=dtype, device=device))
        v = _clamp01(torch.rand(logits.shape, dtype=dtype, device=device))
        return u, v

    @staticmethod
    def hard(logits, u):
        return (logits + torch.logit(u) > 0).to(logits.dtype)

    @staticmethod
    def z(L, u):
        return L + torch.logit(u)

    @staticmethod
    def z_tilde(L, b, v):
        return conditional_logistic(L, b, v)

    @staticmethod
    def hard_input(b, logits, draw_shape, relaxed_f):
        return b.reshape(draw_shape)

    @staticmethod
    def relaxed_input(z, temperature, draw_shape):
        return torch.sigmoid(z / temperature).reshape(draw_shape)

    @staticmethod
    def score(L, b):
        return b - torch.sigmoid(L)

    @staticmethod
    def pullback(L, b, v, g_z, g_zt):
        """g_z ∂z/∂θ + g_z̃ ∂z̃/∂θ, elementwise: ∂z/∂θ = 1, and from ``conditional_logistic``
        ∂z̃/∂θ = vp / ((1 - v)q + v) where b = 1, (1 - v)q / (vp + 1 - v) where b = 0
        (p = σ(θ), q = 1 - p)."""
        p, q = torch.sigmoid(L), torch.sigmoid(-L)
        vp, wq = v * p, (1.0 - v) * q
        dzt = torch.where(b > 0.5, vp / (wq + v), wq / (vp + (1.0 - v)))
        return g_zt.mul(dzt).add_(g_z)


def _adam(params, lr: float) -> torch.optim.Optimizer:
    """The default optimiser of the control: Adam with torch's fused kernel (the same update as
    the per-tensor loop up to rounding; a third of the foreach step's time on CPU, 56 against
    156 µs for the default network's six tensors)."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except RuntimeError:  # a device or dtype without the fused kernel
        return torch.optim.Adam(params, lr=lr, foreach=True)


@register_estimator
class RELAX(Estimator):
    """RELAX (Grathwohl et al. 2018) for Bernoulli variables with a learned control variate.

    Args:
        control: a torch module r(z, item_dims) -> (n, *items) on the logistic variables z of shape
            (n, *items, ...); ``None`` builds a two-hidden-layer tanh MLP (``hidden`` units) lazily.
            ``False`` uses no network (then ``relaxed_f`` must be on: that is REBAR).
        relaxed_f: add η f(σ(z/λ)) to the control (f must be differentiable; two extra evaluations).
        temperature: initial λ; ``learn_temperature`` trains log λ along with the rest.
        eta: initial η.
        lr: Adam learning rate for the control's parameters (or pass ``optimizer``, a function from
            a parameter list to a torch optimiser).
        train: take one variance-minimising step after each estimate.
    """

    name = "relax"
    stateful = True

    @property
    def needs_differentiable_f(self) -> bool:
        """Only the relaxed f, η f(σ(z/λ)), differentiates f."""
        return self.relaxed_f

    def __init__(
        self,
        control: nn.Module | None | bool = None,
        *,
        relaxed_f: bool = False,
        hidden: int = 32,
        temperature: float = 0.5,
        learn_temperature: bool = True,
        eta: float = 1.0,
        lr: float = 1e-2,
        optimizer: Callable | None = None,
        train: bool = True,
    ):
        if control is False and not relaxed_f:
            raise ArgumentError("RELAX needs a control: a network, relaxed_f=True, or both.")
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, int | float)
            or not (temperature > 0)
        ):
            raise ArgumentError(
                f"temperature must be a positive number, got {temperature!r}. Fix: e.g. 0.5."
            )
        self.control = ItemMLP(hidden) if control is None else (control or None)
        self.relaxed_f = relaxed_f
        self.eta = nn.Parameter(torch.tensor(float(eta)))
        self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)))
        self.learn_temperature = learn_temperature
        self.lr = lr
        self._optimizer_fn = optimizer
        self.optimizer: torch.optim.Optimizer | None = None
        self.train = train
        self._last_g: torch.Tensor | None = None  # ĝ of the last estimate (last_variance)

    # -- the control variate ---------------------------------------------------------------------
    @property
    def temperature(self) -> float:
        return float(self.log_temperature.detach().exp())

    def prepare_control(self, like: torch.Tensor) -> None:
        """Move η and log λ to ``like``'s device, and to its dtype until the optimiser holds
        state for them (later they keep their dtype and are cast where used, as the network runs
        in its own: an optimiser's moments cannot change dtype under it)."""
        for p in (self.eta, self.log_temperature):
            dtype = like.dtype if self.optimizer is None else p.dtype
            if p.dtype != dtype or p.device != like.device:
                p.data = p.data.to(device=like.device, dtype=dtype)
        if self.control is not None and getattr(self, "_control_device", None) != like.device:
            self.control.to(device=like.device)  # walks every module: only when the device moves
            self._control_device = like.device

    def control_parameters(self) -> list[torch.Tensor]:
        """φ: what the variance loss trains (the network, η and log λ where in use)."""
        out = [] if self.control is None else list(self.control.parameters())
        if self.relaxed_f:
            out.append(self.eta)
            if self.learn_temperature:
                out.append(self.log_temperature)
        return out

    def _relaxed_f(self, fam, z, evaluator, draw_shape):
        """f(σ(z/λ)) at relaxed inputs, differentiable, or the error saying why it cannot be."""
        relaxed = fam.relaxed_input(z, self.log_temperature.to(z.dtype).exp(), draw_shape)
        try:
            fr = evaluator(relaxed, differentiable=True)
        except (RuntimeError, TypeError, IndexError) as e:
            raise EstimatorNotApplicable(
                f"{type(self).__name__} evaluates f at relaxed inputs σ(z/λ) in (0, 1), which "
                f"failed: {e}. Use RELAX() without relaxed_f, ARM or DisARM, which never "
                "differentiate f."
            ) from e
        if not fr.requires_grad:
            raise EstimatorNotApplicable(
                f"{type(self).__name__} needs f differentiable at relaxed inputs σ(z/λ), but "
                "f's output does not depend differentiably on its input. Use RELAX() without "
                "relaxed_f, ARM, DisARM or ScoreFunction, which only evaluate f."
            )
        return fr

    def _control_terms(self, fam, L, b, v, z, z_t, evaluator, draw_shape, item_dims, create_graph):
        """c(z̃) and ∇θ c(z) - ∇θ c(z̃). The control is evaluated once on z and z̃ stacked (2n
        rows: one network pass, one evaluation of the relaxed f) as a leaf x, differentiated in
        x by one backward pass (none for a network that declares ``value_and_input_grad``: it
        gives ∂r/∂x itself, so the variance gradient needs no double backward through it), and
        ∂c/∂x is pulled back to θ through z(θ) and z̃(θ): by the family's ``pullback`` where it
        declares one, else by autograd."""
        n = z.shape[0]
        both = torch.cat([z, z_t]).detach()
        c = torch.zeros((), dtype=z.dtype, device=z.device)
        d_both, outputs = [], []  # ∂c/∂x given, and the parts of c autograd differentiates
        explicit = getattr(self.control, "value_and_input_grad", None)
        if self.control is not None and explicit is not None:
            with torch.set_grad_enabled(create_graph):
                r, dr = explicit(both.to(self.control_dtype(z)), item_dims)
            d_both.append(dr.to(z.dtype))
            c = c + r.to(z.dtype)
        if (self.control is not None and explicit is None) or self.relaxed_f:
            both.requires_grad_()
        if self.control is not None and explicit is None:
            r = self.control(both.to(self.control_dtype(z)), item_dims)
            outputs.append(r.sum())
            c = c + r.to(z.dtype)
        if self.relaxed_f:
            cf = self.eta.to(z.dtype) * self._relaxed_f(
                fam, both, evaluator, (2 * n, *draw_shape[1:])
            )
            outputs.append(cf.sum())
            c = c + cf
        outputs = [o for o in outputs if o.requires_grad]
        if outputs:
            (d,) = torch.autograd.grad(outputs, both, create_graph=create_graph, allow_unused=True)
            d_both += [] if d is None else [d]
        c_zt = c[n:] if c.dim() else c
        if not d_both:  # a control that does not depend on z: the correction terms vanish
            return c_zt, torch.zeros_like(L)
        d = d_both[0] if len(d_both) == 1 else d_both[0] + d_both[1]
        pullback = getattr(fam, "pullback", None)
        if pullback is not None:
            return c_zt, pullback(L, b, v, d[:n], -d[n:])
        (dc,) = torch.autograd.grad(
            [z, z_t], L, [d[:n], -d[n:]], create_graph=create_graph, allow_unused=True
        )
        return c_zt, (torch.zeros_like(L) if dc is None else dc)

    def control_dtype(self, z):
        """The dtype the control network runs in (fixed by its first use)."""
        if self.control is None:
            return z.dtype
        for p in self.control.parameters():
            if not isinstance(p, nn.parameter.UninitializedParameter):
                return p.dtype
        self.control.to(dtype=z.dtype)
        return z.dtype

    # -- the estimator -----------------------------------------------------------------------------
    biased = False
    unit = "sample"
    samples_per_unit = 1

    def supports(self, dist: D.Distribution) -> str | None:
        """None when a relaxation is registered for ``dist``'s family, else the reason."""
        if relaxation_of(dist) is not None:
            return None
        known = " or ".join(f.__name__ for f in _RELAXATIONS)
        return f"it needs {known} random variables, got {type(unwrap(dist)).__name__}"

    def evals_per_unit(self, dist: D.Distribution | None = None) -> int:
        """f(b), plus f at the relaxed z and z̃ when the control includes the relaxed f."""
        return 3 if self.relaxed_f else 1

    def _family(self, dist):
        why = self.supports(dist)
        if why is not None:
            raise not_applicable(type(self).__name__, dist, why)
        return relaxation_of(dist)

    def check(self, n: int) -> None:
        if not isinstance(n, int) or n < 1:
            raise SampleSizeError(f"{type(self).__name__} needs n ≥ 1 samples, got {n!r}.")

    def _core(self, evaluator, fam, logits, draw_shape, item_dims, keep_graph):
        """Per-sample ĝ with respect to the logits (n, *batch), f(b) and the variance loss."""
        self.prepare_control(logits)
        u, v = fam.noise(logits)
        with torch.no_grad():
            b = fam.hard(logits, u)
        f_b = evaluator(
            fam.hard_input(b, logits, draw_shape, self.relaxed_f), keep_graph=keep_graph
        )
        params = self.control_parameters()
        train = self.train and len(params) > 0
        with torch.enable_grad():
            # θ's copy L is on a graph only where the family leaves the pullback to autograd
            L = logits.detach().requires_grad_(getattr(fam, "pullback", None) is None)
            z, z_t = fam.z(L, u), fam.z_tilde(L, b, v)
            c_zt, dc = self._control_terms(
                fam, L, b, v, z, z_t, evaluator, draw_shape, item_dims, create_graph=train
            )  # fmt: skip
            g = broadcast_rows(f_b.detach() - c_zt, L) * fam.score(L.detach(), b) + dc
        if train:
            self.control_step(g, params)
        self._last_g = g.detach()
        return g.detach(), f_b

    @property
    def last_variance(self) -> float | None:
        """Σ Var(ĝ) over the samples of the last estimate (None before one, or with n = 1);
        computed when read, so an estimate pays no host sync for it."""
        g = self._last_g
        return None if g is None or g.shape[0] < 2 else float(g.var(0).sum())

    def control_step(self, g: torch.Tensor, params: list[torch.Tensor] | None = None) -> None:
        """One optimiser step of φ on the variance loss Σ ĝ² of per-sample gradients ``g``."""
        params = self.control_parameters() if params is None else params
        if not g.requires_grad:  # the control does not depend on its parameters here
            return
        if self.optimizer is None:
            fn = self._optimizer_fn or (lambda ps: _adam(ps, self.lr))
            self.optimizer = fn(params)
        loss = (g**2).reshape(g.shape[0], -1).sum(1).mean()
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        for p, gp in zip(params, grads, strict=True):  # every p.grad set: no zero_grad needed
            if gp is not None and gp.stride() != p.stride():  # fused Adam (torch 2.13, CPU)
                gp = torch.empty_like(p).copy_(gp)  # reads a grad in its parameter's layout
            p.grad = None if gp is None else gp.detach()
        self.optimizer.step()

    def contributions(self, evaluator, dist_fn, params, n, context=None) -> Contributions:
        self.check(n)
        model = SampleModel.expand(dist_fn, params, n)
        fam = self._family(model.dist)
        nat = NaturalParams(model, _logits, type(self).__name__)
        g, f_b = self._core(evaluator, fam, nat.value[0], model.draw_shape, 0, keep_graph=False)
        return Contributions(values=f_b, grads=nat.pullback((g,)), block=1)

    def surrogate(self, evaluator, dist, n, context=None):
        self.check(n)
        fam = self._family(dist)
        refuse_moving_boundary_of(dist, type(self).__name__)
        base = unwrap(dist)
        with torch.enable_grad():
            logits_t = base.logits
        logits = logits_t.detach().unsqueeze(0).expand(n, *logits_t.shape)
        draw_shape = (n, *dist.batch_shape, *dist.event_shape)
        item_dims = len(evaluator.item_shape)
        g, f_b = self._core(evaluator, fam, logits, draw_shape, item_dims, keep_graph=True)
        surrogate = f_b.mean(0).sum() + linear_term((logits_t,), (g.mean(0),))
        return f_b.detach().mean(0).sum(), surrogate

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """A snapshot of the control network, η, log λ and the optimiser (plain tensors and
        numbers: ``torch.load(weights_only=True)`` reads it)."""
        return snapshot(
            {
                "control": None if self.control is None else self.control.state_dict(),
                "eta": self.eta,
                "log_temperature": self.log_temperature,
                "optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
            }
        )

    def load_state_dict(self, state: dict) -> None:
        """Restore into this (possibly fresh) estimator; a control network that was never run
        (lazy layers) is first given the saved dtype, then materialised from the saved weights."""
        saved = state.get("control")
        if saved is not None and self.control is None:
            raise StateError(
                "this state holds a control network, but this estimator has none (control=False). "
                "Fix: build it as the saved one was, e.g. RELAX() or RELAX(control=net)."
            )
        if saved is not None:
            dtype = next(iter(saved.values())).dtype
            if any(
                isinstance(p, nn.parameter.UninitializedParameter)
                for p in self.control.parameters()
            ):
                self.control.to(dtype=dtype)
            self.control.load_state_dict(saved)
        with torch.no_grad():
            self.eta.data = state["eta"].detach().clone()
            self.log_temperature.data = state["log_temperature"].detach().clone()
        if state.get("optimizer") is not None:
            fn = self._optimizer_fn or (lambda ps: _adam(ps, self.lr))
            self.optimizer = fn(self.control_parameters())
            self.optimizer.load_state_dict(state["optimizer"])

    def __repr__(self):
        parts = []
        if self.control is not None:
            parts.append("network")
        if self.relaxed_f:
            parts.append(f"relaxed_f, λ={self.temperature:.3g}, η={float(self.eta.detach()):.3g}")
        return f"{type(self).__name__}({', '.join(parts)})"


@register_estimator
class REBAR(RELAX):
    """REBAR (Tucker, Mnih, Maddison, Lawson, Sohl-Dickstein 2017): RELAX whose control is the
    relaxed f alone, c(z) = η f(σ(z/λ)), with η and the temperature λ learned online."""

    name = "rebar"

    def __init__(
        self,
        temperature: float = 0.5,
        eta: float = 1.0,
        *,
        learn_temperature: bool = True,
        lr: float = 1e-2,
        optimizer: Callable | None = None,
        train: bool = True,
    ):
        super().__init__(
            control=False, relaxed_f=True, temperature=temperature, eta=eta,
            learn_temperature=learn_temperature, lr=lr, optimizer=optimizer, train=train,
        )  # fmt: skip

    def __repr__(self):
        return f"REBAR(λ={self.temperature:.3g}, η={float(self.eta.detach()):.3g})"
