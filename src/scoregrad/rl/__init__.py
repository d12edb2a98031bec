"""Policy gradients (REINFORCE) on Gymnasium environments, built on scoregrad's baselines.

The score-function estimator with f = an episode's return and p = the policy's distribution over
trajectories is REINFORCE:  ∇θ E[R] = E[Σ_t ∇θ log π_θ(a_t|s_t) (G_t - b_t)].

* ``policies``: Categorical / Gaussian MLP policies chosen from the env's spaces.
* ``rollout``: batches of whole episodes from Gymnasium vector envs (auto-reset step masked).
* ``steps``: step-based batches (n steps per sub-env, episodes cut and carried over).
* ``returns``: reward-to-go, discounting, masks; ``advantages``: GAE(λ) with time-limit bootstrap.
* ``normalize``: running observation and reward normalisation (saved in checkpoints).
* ``agent``: the estimator with the core baselines (none, moving average, RLOO, learned value).
* ``gae_agent``: the estimator on step batches (GAE, learned value, several gradient steps).
* ``surrogates``: likelihood ratio, PPO-clip, V-trace (the last two biased).
* ``defaults``: per-environment defaults for ``scoregrad rl train ENV``.
* ``trainer``: training loop with logs, learning curves and exactly-resumable checkpoints.
* ``sequence``: group baselines (RLOO, group-normalised) for an autoregressive token policy.
* ``evaluation``: run a saved policy (``evaluate``).

Names are imported on first use, so ``scoregrad rl --help`` needs neither torch nor gymnasium.
"""

from ..app.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(
    __name__,
    names={
        ".advantages": ("gae",),
        ".agent": ("BASELINES", "BASELINE_NAMES", "REINFORCE", "ValueNet", "make_baseline"),
        ".defaults": ("DEFAULTS", "defaults_for"),
        ".gae_agent": ("GAEReinforce",),
        ".normalize": ("ObsNormalizer", "RewardScaler"),
        ".steps": ("StepBatch", "StepCollector", "make_step_envs"),
        ".surrogates": (
            "LikelihoodRatio",
            "PPOClip",
            "SURROGATE_NAMES",
            "Surrogate",
            "VTrace",
            "make_surrogate",
        ),
        ".evaluation": ("evaluate",),
        ".policies": (
            "CategoricalPolicy",
            "GaussianPolicy",
            "UnsupportedSpaceError",
            "make_policy",
        ),
        ".returns": ("discounted_return", "normalize", "reward_to_go"),
        ".rollout": (
            "Batch",
            "MissingEnvironmentDependency",
            "NonFiniteRewardError",
            "UnknownEnvironmentError",
            "collect",
            "make_envs",
        ),
        ".trainer": (
            "CheckpointError",
            "TrainConfig",
            "Trainer",
            "TrainResult",
            "load_checkpoint",
            "solved_at",
        ),
    },
)
