"""Benchmark problems with exact expectations and exact gradients.

Each ``Problem`` gives a distribution builder, default parameters, a black-box f (picklable, so it
can run on remote executors), and the exact E[f] as a differentiable torch function of the
parameters; the exact gradient is its autograd derivative. Parameters are unconstrained
(log-scales, logits) so any value is valid.

Closed forms (x ~ family):

* Normal(μ, σ):   E(x-k)² = (μ-k)² + σ²;   E e^{-kx²} = e^{-kμ²/(1+2kσ²)}/√(1+2kσ²);
  E cos(kx) = e^{-k²σ²/2} cos(kμ)   (Mohamed et al. 2020, §3).
* MultivariateNormal(μ, LLᵀ): E xᵀAx + bᵀx = tr(AΣ) + μᵀAμ + bᵀμ.
* Bernoulli(σ(θ)) (independent, vector θ): E Σ(b-t)² = Σ p(1-t)² + (1-p)t²   (REBAR/RELAX toy).
* Categorical(softmax(θ)) with cost table c: E c[x] = softmax(θ)ᵀc (also as OneHotCategorical,
  f = yᵀc); V independent categoricals with a coupled f and the 8-pattern Bernoulli toy of
  Liu et al. 2019 / Kool et al. 2020 as one Categorical: E by enumerating the outcomes.
* Poisson(λ): E x = λ, E x² = λ+λ², E x³ = λ³+3λ²+λ.
* Gamma(α, β):  E[x + log x] = α/β + ψ(α) - log β.
* Beta(a, b):   E x² = a(a+1)/((a+b)(a+b+1)).
* Exponential(r): E (x-1)² = 2/r² - 2/r + 1.

>>> p = normal_square(k=3.0)
>>> value, grad = p.exact()
>>> float(value), float(grad["mu"]), float(grad["log_sigma"])  # (1-3)² + 1; 2(μ-k); 2σ²
(5.0, -4.0, 2.0)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.distributions as D
import torch.nn.functional as F

__all__ = [
    "Problem",
    "CATALOGUE",
    "get",
    "normal_square",
    "normal_gaussian_bump",
    "normal_cosine",
    "mvn_quadratic",
    "bernoulli_toy",
    "categorical_table",
    "onehot_table",
    "categorical_batch",
    "categorical_bernoulli_toy",
    "poisson_polynomial",
    "gamma_x_log_x",
    "beta_square",
    "exponential_square",
]


@dataclass
class Problem:
    """A test problem: x ~ dist_fn(**params), cost f(x), exact E[f] as a function of params."""

    name: str
    dist_fn: Callable[..., D.Distribution]
    defaults: dict[str, torch.Tensor]
    f: Callable[[torch.Tensor], torch.Tensor]
    exact_value: Callable[..., torch.Tensor]
    description: str = ""
    discrete: bool = False
    tags: tuple[str, ...] = field(default_factory=tuple)

    def params(self, dtype: torch.dtype = torch.float64, **overrides) -> dict[str, torch.Tensor]:
        """Fresh leaf parameters (requires_grad) at the defaults, or at the given overrides."""
        out = {}
        for k, v in self.defaults.items():
            val = overrides.get(k, v)
            out[k] = torch.as_tensor(val, dtype=dtype).detach().clone().requires_grad_()
        return out

    def exact(self, params: dict[str, torch.Tensor] | None = None):
        """(E[f], {name: ∇ E[f]}) at params (defaults if None), exactly, by autograd."""
        params = params if params is not None else self.params()
        leaves = {k: p.detach().clone().requires_grad_() for k, p in params.items()}
        value = self.exact_value(**leaves)
        grads = torch.autograd.grad(value, list(leaves.values()))
        return value.detach(), dict(zip(leaves, grads))


# --- costs: module-level so that functools.partial of them pickles ------------------------------


def _square(x, k):
    return (x - k) ** 2


def _gauss(x, k):
    return torch.exp(-k * x**2)


def _cos(x, k):
    return torch.cos(k * x)


def _quadratic(x, A, b):
    return torch.einsum("ni,ij,nj->n", x, A.to(x), x) + x @ b.to(x)


def _bernoulli_cost(x, t):
    return ((x - t) ** 2).sum(-1)


def _table(x, costs):
    """c[x] for category indices x; y @ c for one-hot (or relaxed one-hot) vectors y."""
    if x.is_floating_point():
        return x @ costs.to(x)
    dtype = costs.dtype if costs.is_floating_point() else torch.get_default_dtype()
    return costs.to(device=x.device, dtype=dtype)[x]


def _per_variable(x, tables):
    """v_j = C_j[x_j] per variable, (n, V): indices x (n, V) or one-hot y (n, V, K)."""
    if x.is_floating_point():
        return (x * tables.to(x)).sum(-1)
    rows = torch.arange(tables.shape[0], device=x.device)
    return tables.to(device=x.device)[rows, x]


def _coupled(x, tables):
    v = _per_variable(x, tables)
    return (v.sum(-1) - 1.0) ** 2 + v[..., 0] * v[..., -1]


def _bits_cost(x, bits, target):
    """Σ_i (b_i - t_i)² for the bit pattern b of category x (index or one-hot)."""
    b = x @ bits.to(x) if x.is_floating_point() else bits.to(x.device)[x]
    return ((b - target.to(b)) ** 2).sum(-1)


def _poly(x, coeffs):
    x = x.to(torch.float64)
    return sum(c * x**i for i, c in enumerate(coeffs))


def _x_plus_log(x):
    return x + torch.log(x)


def _sq(x):
    return x**2


def _exp_cost(x):
    return (x - 1.0) ** 2


def _normal(mu, log_sigma):
    return D.Normal(mu, log_sigma.exp())


# --- the catalogue ---------------------------------------------------------------------------------


def normal_square(k: float = 3.0, mu: float = 1.0, log_sigma: float = 0.0) -> Problem:
    return Problem(
        f"normal_square(k={k})",
        _normal,
        {"mu": mu, "log_sigma": log_sigma},
        functools.partial(_square, k=k),
        lambda mu, log_sigma: (mu - k) ** 2 + (2 * log_sigma).exp(),
        "x ~ N(μ, σ²), f = (x - k)²",
    )


def normal_gaussian_bump(k: float = 1.0, mu: float = 1.0, log_sigma: float = 0.0) -> Problem:
    def exact(mu, log_sigma):
        s2 = (2 * log_sigma).exp()
        return torch.exp(-k * mu**2 / (1 + 2 * k * s2)) / torch.sqrt(1 + 2 * k * s2)

    return Problem(
        f"normal_exp(k={k})",
        _normal,
        {"mu": mu, "log_sigma": log_sigma},
        functools.partial(_gauss, k=k),
        exact,
        "x ~ N(μ, σ²), f = exp(-k x²)",
    )


def normal_cosine(k: float = 1.0, mu: float = 1.0, log_sigma: float = 0.0) -> Problem:
    return Problem(
        f"normal_cos(k={k})",
        _normal,
        {"mu": mu, "log_sigma": log_sigma},
        functools.partial(_cos, k=k),
        lambda mu, log_sigma: torch.exp(-(k**2) * (2 * log_sigma).exp() / 2) * torch.cos(k * mu),
        "x ~ N(μ, σ²), f = cos(k x)",
    )


def _mvn(mu, tril):
    return D.MultivariateNormal(
        mu,
        scale_tril=torch.tril(tril, -1)
        + torch.diag_embed(torch.diagonal(tril, dim1=-2, dim2=-1).exp()),
    )


def mvn_quadratic(dim: int = 3) -> Problem:
    g = torch.Generator().manual_seed(1234)
    A = torch.randn(dim, dim, generator=g, dtype=torch.float64)
    A = A @ A.T / dim
    b = torch.randn(dim, generator=g, dtype=torch.float64)
    mu0 = torch.linspace(-0.5, 0.5, dim, dtype=torch.float64)
    tril0 = 0.3 * torch.tril(torch.randn(dim, dim, generator=g, dtype=torch.float64), -1)

    def exact(mu, tril):
        L = _mvn(mu, tril).scale_tril
        sigma = L @ L.transpose(-1, -2)
        return torch.trace(A.to(mu) @ sigma) + mu @ A.to(mu) @ mu + b.to(mu) @ mu

    return Problem(
        f"mvn_quadratic(d={dim})",
        _mvn,
        {"mu": mu0, "tril": tril0},
        functools.partial(_quadratic, A=A, b=b),
        exact,
        "x ~ N(μ, LLᵀ) (diag of L stored as logs), f = xᵀAx + bᵀx",
    )


def _bernoulli(logits):
    return D.Bernoulli(logits=logits)


def bernoulli_toy(t: float = 0.499, logits=(0.0,)) -> Problem:
    def exact(logits):
        p = torch.sigmoid(logits)
        return (p * (1 - t) ** 2 + (1 - p) * t**2).sum()

    return Problem(
        f"bernoulli_toy(t={t})",
        _bernoulli,
        {"logits": list(logits)},
        functools.partial(_bernoulli_cost, t=t),
        exact,
        "b ~ Bernoulli(σ(θ)) per element, f = Σ (b - t)² (REBAR/RELAX toy)",
        discrete=True,
    )


def _categorical(logits):
    return D.Categorical(logits=logits)


def categorical_table(costs=(1.0, -2.0, 0.5, 3.0), logits=(0.1, -0.3, 0.2, 0.0)) -> Problem:
    c = torch.tensor(costs, dtype=torch.float64)
    return Problem(
        f"categorical_table(K={len(costs)})",
        _categorical,
        {"logits": list(logits)},
        functools.partial(_table, costs=c),
        lambda logits: torch.softmax(logits, -1) @ c.to(logits),
        "x ~ Categorical(softmax(θ)), f = c[x]",
        discrete=True,
    )


def _onehot_categorical(logits):
    return D.OneHotCategorical(logits=logits)


def onehot_table(costs=(1.0, -2.0, 0.5, 3.0), logits=(0.1, -0.3, 0.2, 0.0)) -> Problem:
    """``categorical_table`` as a OneHotCategorical: f(y) = y @ c (differentiable in y)."""
    c = torch.tensor(costs, dtype=torch.float64)
    return Problem(
        f"onehot_table(K={len(costs)})",
        _onehot_categorical,
        {"logits": list(logits)},
        functools.partial(_table, costs=c),
        lambda logits: torch.softmax(logits, -1) @ c.to(logits),
        "y ~ OneHotCategorical(softmax(θ)), f = yᵀc",
        discrete=True,
    )


_BATCH_TABLES = ((1.0, -2.0, 0.5, 3.0), (0.3, 1.2, -0.7, 0.0), (-1.0, 0.4, 2.0, 0.8))
_BATCH_LOGITS = ((0.1, -0.3, 0.2, 0.0), (0.5, 0.0, -1.0, 0.3), (-0.2, 0.7, 0.0, -0.4))


def categorical_batch(tables=_BATCH_TABLES, logits=_BATCH_LOGITS) -> Problem:
    """V independent categoricals (batch shape (V,)) with a joint, coupled f.

    v_j = C_j[x_j],  f = (Σ_j v_j - 1)² + v_1 v_V;  E[f] by enumerating the K^V outcomes.
    """
    C = torch.tensor(tables, dtype=torch.float64)
    V, K = C.shape
    grid = torch.cartesian_prod(*[torch.arange(K)] * V).reshape(-1, V)  # all K^V outcomes
    f_grid = _coupled(grid, C)

    def exact(logits):
        logp = torch.log_softmax(logits, -1)  # (V, K)
        joint = logp[torch.arange(V), grid].sum(-1).exp()
        return joint @ f_grid.to(logits)

    return Problem(
        f"categorical_batch(V={V}, K={K})",
        _categorical,
        {"logits": [list(r) for r in logits]},
        functools.partial(_coupled, tables=C),
        exact,
        "x_j ~ Categorical(softmax(θ_j)), j = 1..V; v_j = C_j[x_j], f = (Σ v_j - 1)² + v_1 v_V",
        discrete=True,
    )


_TOY_TARGET = (0.6, 0.51, 0.48)


def _toy_dist(eta, d=3):
    """Categorical over the 2^d bit patterns b: log p(b) = Σ_i b_i log σ(η) + (1 - b_i) log σ(-η)."""
    bits = torch.cartesian_prod(*[torch.tensor([0.0, 1.0])] * d).reshape(-1, d).to(eta)
    eta = eta[..., None, None]  # broadcast over a leading sample axis
    return D.Categorical(
        logits=(bits * F.logsigmoid(eta) + (1 - bits) * F.logsigmoid(-eta)).sum(-1)
    )


def categorical_bernoulli_toy(eta: float = 0.0, target=_TOY_TARGET) -> Problem:
    """The toy of Liu et al. 2019 and Kool et al. 2020 (§6.1): d Bernoulli(σ(η)) bits with one
    shared logit η, seen as one Categorical over the 2^d patterns; f = Σ_i (b_i - t_i)².

    E[f] = Σ_i σ(η)(1 - t_i)² + (1 - σ(η)) t_i².
    """
    t = torch.tensor(target, dtype=torch.float64)
    d = t.shape[0]
    bits = torch.cartesian_prod(*[torch.tensor([0.0, 1.0], dtype=torch.float64)] * d).reshape(-1, d)

    def exact(eta):
        p = torch.sigmoid(eta)
        return (p * (1 - t.to(eta)) ** 2 + (1 - p) * t.to(eta) ** 2).sum()

    return Problem(
        f"categorical_bernoulli_toy(eta={eta})",
        functools.partial(_toy_dist, d=d),
        {"eta": eta},
        functools.partial(_bits_cost, bits=bits, target=t),
        exact,
        f"x ~ Categorical over the 2^{d} patterns of {d} Bernoulli(σ(η)) bits, f = Σ (b_i - t_i)²",
        discrete=True,
    )


def _poisson(log_rate):
    return D.Poisson(log_rate.exp())


def poisson_polynomial(coeffs=(1.0, -2.0, 0.5, 0.1), log_rate: float = 0.7) -> Problem:
    def exact(log_rate):
        lam = log_rate.exp()
        moments = [torch.ones_like(lam), lam, lam + lam**2, lam**3 + 3 * lam**2 + lam]
        return sum(c * m for c, m in zip(coeffs, moments))

    if len(coeffs) > 4:
        raise ValueError("poisson_polynomial supports degree ≤ 3")
    return Problem(
        "poisson_polynomial",
        _poisson,
        {"log_rate": log_rate},
        functools.partial(_poly, coeffs=tuple(coeffs)),
        exact,
        "x ~ Poisson(λ), f = Σ c_i x^i (degree ≤ 3)",
        discrete=True,
    )


def _gamma(log_alpha, log_beta):
    return D.Gamma(log_alpha.exp(), log_beta.exp())


def gamma_x_log_x(log_alpha: float = 0.5, log_beta: float = 0.2) -> Problem:
    def exact(log_alpha, log_beta):
        a, b = log_alpha.exp(), log_beta.exp()
        return a / b + torch.digamma(a) - torch.log(b)

    return Problem(
        "gamma_x_plus_log_x",
        _gamma,
        {"log_alpha": log_alpha, "log_beta": log_beta},
        _x_plus_log,
        exact,
        "x ~ Gamma(α, β), f = x + log x",
    )


def _beta(log_a, log_b):
    return D.Beta(log_a.exp(), log_b.exp())


def beta_square(log_a: float = 0.3, log_b: float = 0.8) -> Problem:
    def exact(log_a, log_b):
        a, b = log_a.exp(), log_b.exp()
        return a * (a + 1) / ((a + b) * (a + b + 1))

    return Problem(
        "beta_square",
        _beta,
        {"log_a": log_a, "log_b": log_b},
        _sq,
        exact,
        "x ~ Beta(a, b), f = x²",
    )


def _exponential(log_rate):
    return D.Exponential(log_rate.exp())


def exponential_square(log_rate: float = 0.4) -> Problem:
    def exact(log_rate):
        r = log_rate.exp()
        return 2 / r**2 - 2 / r + 1

    return Problem(
        "exponential_square",
        _exponential,
        {"log_rate": log_rate},
        _exp_cost,
        exact,
        "x ~ Exponential(r), f = (x - 1)²",
    )


#: name -> factory with default arguments
CATALOGUE: dict[str, Callable[[], Problem]] = {
    "normal_square": normal_square,
    "normal_exp": normal_gaussian_bump,
    "normal_cos": normal_cosine,
    "mvn_quadratic": mvn_quadratic,
    "bernoulli_toy": bernoulli_toy,
    "categorical_table": categorical_table,
    "onehot_table": onehot_table,
    "categorical_batch": categorical_batch,
    "categorical_bernoulli_toy": categorical_bernoulli_toy,
    "poisson_polynomial": poisson_polynomial,
    "gamma_x_log_x": gamma_x_log_x,
    "beta_square": beta_square,
    "exponential_square": exponential_square,
}


def get(name: str, **kwargs) -> Problem:
    """A catalogue problem by name, e.g. ``get("normal_square", k=0.0)``."""
    if name not in CATALOGUE:
        import difflib

        close = difflib.get_close_matches(name, CATALOGUE, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown problem {name!r}.{hint} Known: {', '.join(CATALOGUE)}.")
    return CATALOGUE[name](**kwargs)
