"""Monte Carlo prices and Greeks with standard errors: likelihood ratio, pathwise and mixed.

For a discounted payoff P(θ) = e^{-rT} E_θ[f(S)], S ~ p(·; θ) a path model
(``scoregrad.finance.paths``), the three estimators of ∂P/∂θ are

* **likelihood ratio** (``lr``; the score-function estimator, the GBM one-date kernel in
  ``basis``): ∂_a P = E[e^{-rT} (f - b) ∂_a log p] + (∂_a e^{-rT}) E[f], second order by
  ∂_a log p ∂_b log p + ∂_a∂_b log p (Broadie & Glasserman 1996);
* **pathwise** (``pathwise``): differentiate e^{-rT} f(S(θ, Z)) through the reparameterised path;
* **mixed** (``mixed``): pathwise on the payoff's smooth part, LR on the rest, second derivatives
  "pathwise then LR" (Glasserman 2004, §7.3.3).

Variance reduction, all usable with LR: control variates with known mean (``control``: the
terminal price, the geometric Asian for the arithmetic Asian, or a ``PathControlVariate``) with
leave-one-out coefficients; antithetic paths and randomised QMC through the core samplers.
Standard errors come from independent units (paths, antithetic pairs, QMC replicates), streamed
in chunks through the core's ``RunningMoments``, so memory stays constant in n.

The modules: ``names`` (the Greeks and their parameters), ``result`` (``GreeksResult``),
``simulation`` (one estimate's inputs, draws, payoff values), ``lr``, ``basis``, ``pathwise``,
``mixed``, ``control``, ``exact`` (closed-form oracles) and ``estimate`` (``estimate_greeks``).

>>> from scoregrad.finance import GBM, Call, estimate_greeks
>>> m = GBM(spot=100.0, vol=0.25, rate=0.1, div=0.03, maturity=0.2)
>>> res = estimate_greeks(m, Call(100.0), n=100_000, seed=0)
>>> abs(float(res.greeks["delta"]) - 0.568) < 4 * float(res.stderr["delta"])
True
"""

from ...app.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    names={
        ".names": ("DEFAULT_GREEKS", "GREEK_NAMES", "METHODS"),
        ".result": ("GreeksResult",),
        ".control": ("PathControlVariate", "geometric_asian_cv", "terminal_price_cv"),
        ".exact": ("closed_form", "exact_greeks", "register_closed_form"),
        ".estimate": ("estimate_greeks",),
        ".pathwise": ("pathwise_problem",),
    },
)
