"""The engine behind both doors, shared by every estimator and application.

* ``model``: ``SampleModel`` (parameters expanded over the sample axis, per-sample scores in one
  backward pass, closed-form family scores via ``register_score``), ``register_icdf``.
* ``evaluate``: ``Evaluator`` calls the user's f, converts and checks its output, counts evaluations.
* ``parallel``: evaluating f through any ``concurrent.futures.Executor``; ``Remote`` declares
  workers, retries and how to rebuild a dead pool, so a killed worker loses nothing.
* ``stats``: numerically stable moments (shifted sums, Chan's streaming merge).
* ``chunks``: chunk planning that bounds memory for any n.
* ``seeding``: seeds that never touch the caller's RNG state.

Applications import these public names from ``scoregrad.core``; nothing outside the engine
reaches into its modules' private names.
"""

from .chunks import CHUNK_ELEMENTS, CHUNK_ELEMENTS_ACCELERATOR, chunk_sizes, unit_means
from .evaluate import Evaluator, as_values
from .model import (
    SampleModel,
    build_distribution,
    from_uniform,
    register_icdf,
    register_score,
    sum_trailing,
)
from .parallel import Remote, RemoteStats, map_batches
from .seeding import seeded
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
    "map_batches",
    "Remote",
    "RemoteStats",
    "seeded",
    "RunningMoments",
    "shifted_moments",
]
