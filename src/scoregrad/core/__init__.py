"""The engine behind both doors, shared by every estimator and application.

* ``model``: ``SampleModel`` (parameters expanded over the sample axis, per-sample scores in one
  backward pass, closed-form family scores via ``register_score``), ``register_icdf``.
* ``evaluate``: ``Evaluator`` calls the user's f, converts and checks its output, counts evaluations.
* ``parallel``: evaluating f through any ``concurrent.futures.Executor``; ``Remote`` declares
  workers, retries and how to rebuild a dead pool, so a killed worker loses nothing.
* ``family``: ``Family``, a dist_fn naming a torch family (optionally from unconstrained values):
  its declared chain rule gives per-sample scores without an autograd pass.
* ``result``: ``GradientEstimate`` and the unit moments behind it.
* ``stats``: numerically stable moments (shifted sums, Chan's streaming merge).
* ``chunks``: chunk planning that bounds memory for any n.
* ``seeding``: seeds that never touch the caller's RNG state.
* ``loo``: leave-one-out sums, means, control-variate coefficients and regressions (one
  implementation for the estimators, VI and finance).
* ``shapes``: ``broadcast_rows``, per-sample signals against per-element tensors.
* ``state``: the state contract (``stateful``, ``state_dict`` snapshots that round-trip).

Applications import these public names from ``scoregrad.core``; nothing outside the engine
reaches into its modules' private names.
"""

from .chunks import CHUNK_ELEMENTS, CHUNK_ELEMENTS_ACCELERATOR, chunk_sizes, unit_means
from .evaluate import Evaluator, as_values
from .family import Family
from .loo import excluding_own_block, loo_coefficient, loo_mean, loo_regress
from .model import (
    SampleModel,
    build_distribution,
    from_uniform,
    register_icdf,
    register_score,
    sum_trailing,
    unchecked,
)
from .parallel import Remote, RemoteStats, map_batches
from .result import GradientEstimate
from .seeding import seeded
from .shapes import broadcast_rows
from .state import snapshot
from .stats import RunningMoments, shifted_moments

__all__ = [
    "CHUNK_ELEMENTS",
    "CHUNK_ELEMENTS_ACCELERATOR",
    "chunk_sizes",
    "unit_means",
    "Evaluator",
    "as_values",
    "SampleModel",
    "build_distribution",
    "from_uniform",
    "register_icdf",
    "register_score",
    "sum_trailing",
    "unchecked",
    "map_batches",
    "Family",
    "GradientEstimate",
    "Remote",
    "RemoteStats",
    "seeded",
    "excluding_own_block",
    "loo_coefficient",
    "loo_mean",
    "loo_regress",
    "broadcast_rows",
    "snapshot",
    "RunningMoments",
    "shifted_moments",
]
