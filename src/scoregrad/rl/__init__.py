"""Policy gradients (REINFORCE) on Gymnasium environments, built on scoregrad's baselines.

The score-function estimator with f = an episode's return and p = the policy's distribution over
trajectories is REINFORCE:  ∇θ E[R] = E[Σ_t ∇θ log π_θ(a_t|s_t) (G_t - b_t)].

* ``policies``: Categorical / Gaussian MLP policies chosen from the env's spaces.
* ``rollout``: batches of whole episodes from Gymnasium vector envs (auto-reset step masked).
* ``returns``: reward-to-go, discounting, masks.
* ``agent``: the estimator with the core baselines (none, moving average, RLOO, learned value).
* ``trainer``: training loop with logs, learning curves and exactly-resumable checkpoints.
* ``sequence``: group baselines (RLOO, group-normalised) for an autoregressive token policy.
* ``evaluate``: run a saved policy.
"""

from .agent import BASELINES, REINFORCE, make_baseline
from .evaluate import evaluate
from .policies import CategoricalPolicy, GaussianPolicy, UnsupportedSpaceError, make_policy
from .returns import discounted_return, normalize, reward_to_go
from .rollout import Batch, NonFiniteRewardError, UnknownEnvironmentError, collect, make_envs
from .trainer import CheckpointError, TrainConfig, Trainer, TrainResult, load_checkpoint, solved_at

__all__ = [
    "BASELINES",
    "REINFORCE",
    "make_baseline",
    "evaluate",
    "CategoricalPolicy",
    "GaussianPolicy",
    "UnsupportedSpaceError",
    "make_policy",
    "discounted_return",
    "normalize",
    "reward_to_go",
    "Batch",
    "NonFiniteRewardError",
    "UnknownEnvironmentError",
    "collect",
    "make_envs",
    "CheckpointError",
    "TrainConfig",
    "Trainer",
    "TrainResult",
    "load_checkpoint",
    "solved_at",
]
