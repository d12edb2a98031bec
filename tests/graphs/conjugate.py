"""The conjugate models of Pyro's inference tests, as graphs of guide choices with closed forms.

Each problem's graph draws the guide's latents (with the estimators given, one per latent) and
declares the cost -log p(x, z) + log q(z), so E[cost] = -ELBO = KL(q || posterior) - log p(x).
The closed-form posterior lies in the guide's family, so ``posterior()`` gives the guide parameters
where the gradient vanishes, and ``kl(params)`` (torch's ``kl_divergence``) the exact objective up
to a constant: its gradient is the exact gradient of E[cost].
"""

from __future__ import annotations

import torch
import torch.distributions as D
from torch.distributions import kl_divergence

F64 = torch.float64


def _t(x):
    return torch.as_tensor(x, dtype=F64)


class Problem:
    latents: tuple[str, ...] = ("z",)
    start_offset = (0.17, -0.143)  # Pyro's perturbation of the posterior parameters

    def start(self) -> dict[str, torch.Tensor]:
        post = self.posterior()
        offs = list(self.start_offset) * len(post)
        return {k: (v + offs[i]).clone().requires_grad_() for i, (k, v) in enumerate(post.items())}


class NormalNormal(Problem):
    """mu ~ N(mu0, lam0^-½) (2-d), x_i ~ N(mu, lam^-½); q = N(m, e^s)."""

    lam0, mu0, lam = _t([0.1, 0.1]), _t([0.0, 0.5]), _t([6.0, 4.0])
    data = _t([[-0.1, 0.3], [0.0, 0.4], [0.2, 0.5], [0.1, 0.7]])

    def _post(self):
        lam_n = self.lam0 + len(self.data) * self.lam
        mu_n = (self.data.sum(0) * self.lam + self.mu0 * self.lam0) / lam_n
        return D.Normal(mu_n, lam_n**-0.5)

    def posterior(self):
        p = self._post()
        return {"m": p.loc, "s": p.scale.log()}

    def q(self, p):
        return D.Normal(p["m"], p["s"].exp())

    def model(self, p, estimators):
        (est,) = estimators

        def model(g):
            q = self.q(p)
            mu = g.sample("mu", q, est)
            lp = D.Normal(self.mu0, self.lam0**-0.5).log_prob(mu).sum(-1)
            lp = lp + D.Normal(mu.unsqueeze(1), self.lam**-0.5).log_prob(self.data).sum((-1, -2))
            g.cost("neg_elbo", q.log_prob(mu).sum(-1) - lp)

        return model

    def kl(self, p):
        return kl_divergence(self.q(p), self._post()).sum()


class NormalNormalNormal(Problem):
    """m ~ N(0, 1), mu | m ~ N(m, 0.5), x_i | mu ~ N(mu, 0.7);
    q(m) q(mu | m) = N(m; a, e^b) N(mu; k m + c, e^d), which holds the exact joint posterior."""

    latents = ("m", "mu")
    s1, s = 0.5, 0.7
    data = _t([0.8, 1.4, 0.3, 1.1])

    def _post(self):
        prior_cov = _t([[1.0, 1.0], [1.0, 1.0 + self.s1**2]])
        prec = torch.linalg.inv(prior_cov) + torch.diag(_t([0.0, len(self.data) / self.s**2]))
        cov = torch.linalg.inv(prec)
        mean = cov @ _t([0.0, float(self.data.sum()) / self.s**2])
        return D.MultivariateNormal(mean, cov)

    def posterior(self):
        p = self._post()
        mean, cov = p.loc, p.covariance_matrix
        k = cov[0, 1] / cov[0, 0]
        return {
            "a": mean[0],
            "b": cov[0, 0].sqrt().log(),
            "k": k,
            "c": mean[1] - k * mean[0],
            "d": (cov[1, 1] - k * cov[0, 1]).sqrt().log(),
        }

    def model(self, p, estimators):
        e1, e2 = estimators

        def model(g):
            q1 = D.Normal(p["a"], p["b"].exp())
            m = g.sample("m", q1, e1)
            q2 = D.Normal(p["k"] * m + p["c"], p["d"].exp())
            mu = g.sample("mu", q2, e2)
            lp = D.Normal(_t(0.0), 1.0).log_prob(m) + D.Normal(m, self.s1).log_prob(mu)
            lp = lp + D.Normal(mu.unsqueeze(-1), self.s).log_prob(self.data).sum(-1)
            g.cost("neg_elbo", q1.log_prob(m) + q2.log_prob(mu) - lp)

        return model

    def kl(self, p):
        va, vd = (2 * p["b"]).exp(), (2 * p["d"]).exp()
        mean = torch.stack([p["a"], p["k"] * p["a"] + p["c"]])
        cov = torch.stack(
            [torch.stack([va, p["k"] * va]), torch.stack([p["k"] * va, p["k"] ** 2 * va + vd])]
        )
        return kl_divergence(D.MultivariateNormal(mean, cov), self._post())


class _GammaFamily(Problem):
    """Guides Gamma(e^α, e^β) or Beta(e^α, e^β) for a scalar latent."""

    family = D.Gamma

    def q(self, p):
        return self.family(p["alpha"].exp(), p["beta"].exp())

    def posterior(self):
        a, b = self._post_params()
        return {"alpha": _t(a).log(), "beta": _t(b).log()}

    def kl(self, p):
        a, b = self._post_params()
        return kl_divergence(self.q(p), self.family(_t(a), _t(b)))

    def model(self, p, estimators):
        (est,) = estimators

        def model(g):
            q = self.q(p)
            z = g.sample("z", q, est)
            g.cost("neg_elbo", q.log_prob(z) - self.log_joint(z))

        return model


class BernoulliBeta(_GammaFamily):
    family = D.Beta
    data = _t([0.0, 1.0, 1.0, 1.0])

    def _post_params(self):
        s = float(self.data.sum())
        return 1.0 + s, 1.0 + len(self.data) - s

    def log_joint(self, z):
        lp = D.Beta(_t(1.0), _t(1.0)).log_prob(z)
        return lp + D.Bernoulli(probs=z.unsqueeze(-1)).log_prob(self.data).sum(-1)


class PoissonGamma(_GammaFamily):
    data = _t([1.0, 2.0, 3.0])

    def _post_params(self):
        return 1.0 + float(self.data.sum()), 1.0 + len(self.data)

    def log_joint(self, z):
        lp = D.Gamma(_t(1.0), _t(1.0)).log_prob(z)
        return lp + D.Poisson(z.unsqueeze(-1)).log_prob(self.data).sum(-1)


class ExponentialGamma(_GammaFamily):
    data = _t([3.0, 2.0])

    def _post_params(self):
        return 1.0 + len(self.data), 1.0 + float(self.data.sum())

    def log_joint(self, z):
        lp = D.Gamma(_t(1.0), _t(1.0)).log_prob(z)
        return lp + D.Exponential(z.unsqueeze(-1)).log_prob(self.data).sum(-1)


class LogNormalNormal(Problem):
    """mu ~ N(1, 1), x_i ~ LogNormal(mu, 2.5^-½); q = N(e^m, (e^t)^-½) as in Pyro's test."""

    mu0, tau0, tau = 1.0, 1.0, 2.5
    data = _t([1.5, 2.2])

    def _post(self):
        tau_n = self.tau0 + len(self.data) * self.tau
        mu_n = (self.mu0 * self.tau0 + self.tau * float(self.data.log().sum())) / tau_n
        return D.Normal(_t(mu_n), _t(tau_n) ** -0.5)

    def posterior(self):
        p = self._post()
        return {"m": p.loc.log(), "t": (p.scale**-2).log()}

    def q(self, p):
        return D.Normal(p["m"].exp(), p["t"].exp() ** -0.5)

    def model(self, p, estimators):
        (est,) = estimators

        def model(g):
            q = self.q(p)
            mu = g.sample("mu", q, est)
            lp = D.Normal(_t(self.mu0), self.tau0**-0.5).log_prob(mu)
            lp = lp + D.LogNormal(mu.unsqueeze(-1), self.tau**-0.5).log_prob(self.data).sum(-1)
            g.cost("neg_elbo", q.log_prob(mu) - lp)

        return model

    def kl(self, p):
        return kl_divergence(self.q(p), self._post())


PROBLEMS = {
    "normal_normal": NormalNormal,
    "normal_normal_normal": NormalNormalNormal,
    "bernoulli_beta": BernoulliBeta,
    "poisson_gamma": PoissonGamma,
    "exponential_gamma": ExponentialGamma,
    "lognormal_normal": LogNormalNormal,
}
