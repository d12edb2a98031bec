"""Group baselines for generative policies: a GRU token policy rewarded by a black box.

A policy p_θ(y | x) generates a sequence y = (y_1, ..., y_L) token by token for a prompt x, and a
black-box function R(x, y) scores the whole output. The score-function gradient of E[R] is

    ∇θ E_{y~p_θ(·|x)}[R(x, y)] = E[(R(x, y) - b) ∇θ Σ_t log p_θ(y_t | x, y_<t)].

With K samples y^1..y^K of the *same* prompt, the group gives baselines for free:

* ``"loo"`` (RLOO; Kool et al. 2019; Ahmadian et al. 2024): b_k = mean of the other K-1 rewards
  (the core's ``LeaveOneOut`` along the group axis). Unbiased; needs K ≥ 2.
* ``"group-norm"`` (group-normalised advantages, as in GRPO; Shao et al. 2024):
  A_k = (R_k - mean_K R) / (std_K R + ε). The mean includes R_k itself, which scales the
  gradient by (K-1)/K, and the division by the group's std is a data-dependent step size: biased,
  usually helpful. A group of one sample (K = 1) has no spread: its advantage is 0 (no signal, no
  NaN), and the trainer refuses K = 1 with this baseline rather than train on nothing.
* ``"moving-average"``: the core's ``MovingAverage`` of earlier batches' rewards, the one group baseline that
  works with K = 1.
* ``"none"``.

Two tasks with black-box rewards come with the module: ``DigitSumTask`` (emit L digits whose sum is
the prompt's target) and ``TargetStringTask`` (spell the prompt's target word).

>>> import torch
>>> group_advantages(torch.tensor([[1.0, 0.0], [3.0, 0.0]]), "loo")   # (K=2, P=2)
tensor([[-2.,  0.],
        [ 2.,  0.]])
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .. import baselines as B
from ..app.names import Names
from ..core import seeded
from ..dice import magic_box
from ..errors import FunctionOutputError, SampleSizeError, ScoregradError

__all__ = [
    "TokenPolicy",
    "DigitSumTask",
    "TargetStringTask",
    "group_advantages",
    "SequenceTrainer",
    "GROUP_BASELINES",
]

#: the group baselines' names (``norm`` and ``ma`` are old spellings)
GROUP_BASELINE_NAMES = Names(
    "group baseline",
    ("loo", "group-norm", "moving-average", "none"),
    {"norm": "group-norm", "ma": "moving-average"},
)
GROUP_BASELINES = tuple(GROUP_BASELINE_NAMES)


class TokenPolicy(nn.Module):
    """An autoregressive GRU over tokens, conditioned on a prompt id through its initial state.

    ``sample`` draws (M, L) tokens one step at a time (vectorised over the M sequences);
    ``log_prob`` scores given tokens in one teacher-forced pass.
    """

    def __init__(self, n_prompts: int, vocab: int, hidden: int = 64):
        super().__init__()
        self.vocab = int(vocab)
        self.prompt = nn.Embedding(n_prompts, hidden)
        self.embed = nn.Embedding(vocab + 1, hidden)  # last id: begin-of-sequence
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def _h0(self, prompts):
        return torch.tanh(self.prompt(prompts)).unsqueeze(0)

    def log_prob(self, prompts: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Per-token log p(y_t | x, y_<t): shape (M, L)."""
        bos = torch.full_like(tokens[:, :1], self.vocab)
        inp = self.embed(torch.cat([bos, tokens[:, :-1]], 1))
        out, _ = self.gru(inp, self._h0(prompts))
        logp = torch.log_softmax(self.head(out), -1)
        return logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)

    @torch.no_grad()
    def sample(self, prompts: torch.Tensor, length: int, generator: torch.Generator):
        h = self._h0(prompts)
        tok = torch.full((prompts.shape[0],), self.vocab, dtype=torch.long, device=prompts.device)
        out = []
        for _ in range(length):
            o, h = self.gru(self.embed(tok).unsqueeze(1), h)
            probs = torch.softmax(self.head(o[:, 0]), -1)
            tok = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
            out.append(tok)
        return torch.stack(out, 1)


@dataclass
class DigitSumTask:
    """Prompt s ∈ {0..9L}: emit L digits; reward -|Σ digits - s| / (9L) (0 is perfect)."""

    length: int = 4
    vocab: int = 10

    @property
    def n_prompts(self) -> int:
        return 9 * self.length + 1

    def reward(self, prompts: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        return -np.abs(tokens.sum(1) - prompts) / (9.0 * self.length)


@dataclass
class TargetStringTask:
    """Prompt i: spell ``targets[i]``; reward = fraction of positions with the right letter."""

    targets: Sequence[str] = ("policy", "reward", "sample", "return", "scores")
    alphabet: str = "abcdefghijklmnopqrstuvwxyz"

    def __post_init__(self):
        lengths = {len(t) for t in self.targets}
        if len(lengths) != 1:
            raise ValueError("TargetStringTask needs targets of equal length.")
        self._ids = np.array([[self.alphabet.index(c) for c in t] for t in self.targets])

    @property
    def length(self) -> int:
        return self._ids.shape[1]

    @property
    def vocab(self) -> int:
        return len(self.alphabet)

    @property
    def n_prompts(self) -> int:
        return len(self.targets)

    def reward(self, prompts: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        return (tokens == self._ids[prompts]).mean(1)

    def decode(self, tokens) -> list[str]:
        return ["".join(self.alphabet[i] for i in row) for row in np.asarray(tokens)]


def group_advantages(rewards: torch.Tensor, method: str, eps: float = 1e-6) -> torch.Tensor:
    """Advantages for rewards shaped (K, P): K samples (the group) for each of P prompts.

    ``"loo"``: R_k - mean_{j≠k} R_j (raises ``SampleSizeError`` for K = 1);
    ``"group-norm"``: (R_k - mean) / (std + eps) with the unbiased std; all zeros when K = 1 or
    when the group's rewards are all equal; ``"none"``: R itself.
    """
    method = GROUP_BASELINE_NAMES.resolve(method)
    K = rewards.shape[0]
    if method == "loo":
        return rewards - B.LeaveOneOut()(rewards)  # SampleSizeError names the fix when K = 1
    if method == "group-norm":
        if K == 1:
            return torch.zeros_like(rewards)
        centred = rewards - rewards.mean(0, keepdim=True)
        std = rewards.std(0, keepdim=True)
        # a group whose rewards agree up to round-off has no signal: exactly 0, not noise / eps
        tol = 1e-6 * rewards.abs().amax(0, keepdim=True)
        return torch.where(std > tol, centred / (std + eps), torch.zeros_like(centred))
    if method == "none":
        return rewards.clone()
    raise ScoregradError(
        f"group_advantages has no method {method!r}: 'moving-average' needs earlier batches. "
        "Fix: use 'loo', 'group-norm' or 'none', or SequenceTrainer(baseline='moving-average')."
    )


@dataclass
class SequenceResult:
    baseline: str
    group_size: int
    steps: int
    samples: int
    seconds: float
    mean_reward: list[float] = field(repr=False)

    @property
    def final(self) -> float:
        tail = self.mean_reward[-20:]
        return float(np.mean(tail)) if tail else math.nan


class SequenceTrainer:
    """Train a ``TokenPolicy`` on a task with a group baseline.

    Each step draws P prompts, K samples of each (the group), scores them with the task's black
    box, forms advantages with the chosen baseline and takes one Adam step on the DiCE surrogate
    (1/(KP)) Σ magic(log p(y|x)) A.

    >>> t = SequenceTrainer(DigitSumTask(length=2), baseline="loo", group_size=4, seed=0)
    >>> res = t.train(steps=3)
    >>> len(res.mean_reward)
    3
    """

    def __init__(
        self,
        task,
        baseline: str = "loo",
        group_size: int = 8,
        prompts_per_step: int = 16,
        lr: float = 3e-3,
        hidden: int = 64,
        seed: int = 0,
        reward_fn: Callable | None = None,
    ):
        baseline = GROUP_BASELINE_NAMES.resolve(baseline, option="baseline")
        if group_size < 1 or prompts_per_step < 1:
            raise ScoregradError(
                f"group_size ({group_size}) and prompts_per_step ({prompts_per_step}) must be "
                "positive integers. Fix: pass values of at least 1."
            )
        if group_size == 1 and baseline in ("loo", "group-norm"):
            raise SampleSizeError(
                f"baseline {baseline!r} compares the K samples of a prompt with each other, and "
                "group_size=1 leaves nothing to compare with (leave-one-out is undefined; "
                "normalised advantages are all 0, so no learning signal). Fix: group_size >= 2, "
                "or baseline='moving-average' (moving average over earlier steps) for single samples."
            )
        self.task, self.baseline = task, baseline
        self.K, self.P = int(group_size), int(prompts_per_step)
        self.reward_fn = reward_fn if reward_fn is not None else task.reward
        with seeded(seed):
            self.policy = TokenPolicy(task.n_prompts, task.vocab, hidden)
        self.optimizer = torch.optim.Adam(self.policy.parameters(), lr=lr)
        self.generator = torch.Generator().manual_seed(seed + 1)
        self.moving = B.MovingAverage(0.9)
        self.history: list[float] = []

    def rewards(self, prompts: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Call the black box on (M,) prompts and (M, L) tokens; check shape and finiteness."""
        r = np.asarray(self.reward_fn(prompts.numpy(), tokens.numpy()), dtype=np.float64)
        if r.shape != (tokens.shape[0],):
            raise FunctionOutputError(
                f"the reward function returned shape {r.shape}; expected one value per sequence "
                f"({tokens.shape[0]},). Fix: return a 1-D array with one reward per row."
            )
        if not np.isfinite(r).all():
            raise FunctionOutputError(
                "the reward function returned NaN or infinite rewards. Fix: return finite values."
            )
        return torch.as_tensor(r, dtype=torch.float32)

    def step(self) -> float:
        K, P = self.K, self.P
        prompts = torch.randint(self.task.n_prompts, (P,), generator=self.generator)
        flat_prompts = prompts.repeat(K)  # (K*P,): row k*P + p is sample k of prompt p
        tokens = self.policy.sample(flat_prompts, self.task.length, self.generator)
        r = self.rewards(flat_prompts, tokens).reshape(K, P)
        if self.baseline == "moving-average":
            A = r - self.moving(r.reshape(-1)).reshape(K, P)
            self.moving.update(r.reshape(-1))
        else:
            A = group_advantages(r, self.baseline)
        logp = self.policy.log_prob(flat_prompts, tokens).sum(1)
        loss = -(magic_box(logp) * A.reshape(-1)).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        mean = float(r.mean())
        self.history.append(mean)
        return mean

    def train(self, steps: int, progress: bool = False) -> SequenceResult:
        from tqdm.auto import tqdm

        t0 = time.perf_counter()
        bar = tqdm(range(steps), disable=not progress, desc=f"sequence [{self.baseline}]")
        for _ in bar:
            m = self.step()
            bar.set_postfix(reward=f"{m:.3f}")
        return SequenceResult(
            baseline=self.baseline,
            group_size=self.K,
            steps=len(self.history),
            samples=len(self.history) * self.K * self.P,
            seconds=time.perf_counter() - t0,
            mean_reward=list(self.history),
        )
