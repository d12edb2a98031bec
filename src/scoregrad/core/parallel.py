"""Evaluating a black-box f through any ``concurrent.futures.Executor``, losing nothing.

The samples are drawn in the calling process (so the random stream, and hence the estimate for a
given seed, is exactly the one of an in-process run); only f is shipped out, in batches. Any
executor works: ``ProcessPoolExecutor``, ``ThreadPoolExecutor``, Dask's ``client.get_executor()``,
Ray's executors. f must be picklable (a module-level function or a callable object) for
process-based executors.

Remote evaluation fails in ways local evaluation does not: a worker is killed (out of memory, a
pre-empted node), a task raises once on a flaky machine. ``map_batches`` therefore

* submits every batch as a future and keeps at most ``workers × tasks_per_worker`` in flight, so
  memory stays bounded and every worker stays busy (by default ``tasks_per_worker`` batches per
  worker, each a slice of consecutive samples: the slow workers get fewer of them);
* resubmits a batch that failed, up to ``retries`` times (3 by default);
* treats a ``BrokenExecutor`` (``BrokenProcessPool``: a killed worker kills the whole pool) as a
  dead executor: with a way to build a new one (``Remote(..., rebuild=...)``) it continues on a
  fresh executor, at most ``retries`` times; without one it stops;
* never returns a partial result: if any batch is still missing after its retries, it raises
  ``RemoteEvaluationError`` saying how many samples were not evaluated, and how to fix it.

Batches are put back in sample order, so the values (and the estimate) are bit for bit those of
an in-process run for the same seed, however many retries it took. Evaluations of f are counted
by the caller (``Evaluator``) only once every batch has completed, so ``n_evals`` equals n.

>>> from concurrent.futures import ThreadPoolExecutor
>>> import torch
>>> with ThreadPoolExecutor(2) as ex:
...     map_batches(lambda x: x.sum(1), torch.ones(10, 3), ex, batch_size=4).tolist()
[3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0]

A pool that can be rebuilt survives a killed worker (``Remote.process_pool`` builds its own and
builds a fresh one when a worker dies; pass it as ``executor=`` to ``estimate_grad``):

>>> with Remote.process_pool(2) as remote:
...     map_batches(torch.square, torch.arange(4.0), remote).tolist()
[0.0, 1.0, 4.0, 9.0]
"""

from __future__ import annotations

import math
import os
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Executor, Future, wait
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ParameterError, RemoteEvaluationError

__all__ = ["Remote", "RemoteStats", "map_batches", "DEFAULT_RETRIES", "TASKS_PER_WORKER"]

#: resubmissions of one failed batch (and rebuilds of a dead executor) before giving up
DEFAULT_RETRIES = 3
#: batches per worker when the batch size is chosen automatically (load balancing)
TASKS_PER_WORKER = 4


def _cpu_count() -> int:
    count = getattr(os, "process_cpu_count", os.cpu_count)()
    return max(1, count or 1)


@dataclass
class RemoteStats:
    """What remote evaluation has cost so far: batches and samples completed, batches resubmitted
    after a failure (``resubmitted_samples`` of f's evaluations were repeated), executor rebuilds."""

    batches: int = 0
    samples: int = 0
    resubmitted_batches: int = 0
    resubmitted_samples: int = 0
    rebuilds: int = 0


class Remote(Executor):
    """An executor with a declared retry policy: pass it wherever scoregrad takes ``executor=``.

    Args:
        executor: the executor that runs f (``None``: built by ``rebuild`` on first use).
        workers: how many tasks it runs at once; sets the default batch size and the number of
            futures in flight. By default ``os.process_cpu_count()`` (``Remote.dask`` reads Dask's
            thread count); declare it when the executor has a different number of workers.
        retries: resubmissions of a failed batch, and rebuilds of a dead executor, before
            ``RemoteEvaluationError``.
        rebuild: a function returning a fresh executor, called when the current one is broken
            (a ``ProcessPoolExecutor`` whose worker was killed never recovers). Executors built by
            it are shut down by ``shutdown()`` / the ``with`` block; the one you passed stays yours.
        tasks_per_worker: batches per worker when the batch size is chosen automatically.

    ``stats`` (a ``RemoteStats``) accumulates over calls: how many batches had to be resubmitted.

    >>> from concurrent.futures import ThreadPoolExecutor
    >>> import torch
    >>> with Remote(rebuild=lambda: ThreadPoolExecutor(2), workers=2) as remote:
    ...     v = map_batches(torch.square, torch.arange(6.0), remote)
    >>> v.tolist(), remote.stats.batches        # 2 workers × 4 tasks, but only 6 samples
    ([0.0, 1.0, 4.0, 9.0, 16.0, 25.0], 6)
    """

    def __init__(
        self,
        executor: Executor | None = None,
        *,
        workers: int | None = None,
        retries: int = DEFAULT_RETRIES,
        rebuild: Callable[[], Executor] | None = None,
        tasks_per_worker: int = TASKS_PER_WORKER,
    ):
        if executor is None and rebuild is None:
            raise ParameterError(
                "Remote needs an executor, or rebuild=<function returning one> (e.g. "
                "rebuild=lambda: ProcessPoolExecutor(4))."
            )
        if executor is not None and not callable(getattr(executor, "submit", None)):
            raise ParameterError(
                f"executor must be a concurrent.futures.Executor (with .submit), got "
                f"{type(executor).__name__}. For Dask use Remote.dask(client)."
            )
        _check_count("workers", workers, allow_none=True)
        _check_count("tasks_per_worker", tasks_per_worker)
        _check_count("retries", retries, minimum=0)
        self.executor = executor
        self.workers = int(workers) if workers is not None else _cpu_count()
        self.retries = int(retries)
        self.rebuild = rebuild
        self.tasks_per_worker = int(tasks_per_worker)
        self.stats = RemoteStats()
        self._owned: list[Executor] = []

    @classmethod
    def process_pool(cls, workers: int | None = None, **kw) -> Remote:
        """A ``ProcessPoolExecutor`` of ``workers`` processes that is rebuilt if a worker dies."""
        from concurrent.futures import ProcessPoolExecutor

        workers = workers or _cpu_count()
        return cls(workers=workers, rebuild=lambda: ProcessPoolExecutor(workers), **kw)

    @classmethod
    def dask(cls, client, **kw) -> Remote:
        """Dask's executor for ``client``, with its worker threads as ``workers``. Dask itself
        reruns tasks whose worker died (up to its ``allowed-failures``); the retries here cover the
        rest (``KilledWorker``, a task that raised)."""
        workers = kw.pop("workers", None) or max(1, sum(client.nthreads().values()))
        return cls(client.get_executor(), workers=workers, **kw)

    # -- the Executor interface -------------------------------------------------------------------
    def current(self) -> Executor:
        """The executor in use (built by ``rebuild`` on first use when none was given)."""
        if self.executor is None:
            self.executor = self._build()
        return self.executor

    def submit(self, fn, /, *args, **kwargs) -> Future:
        return self.current().submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Shut down the executors this object built (not the one passed in)."""
        for ex in self._owned:
            ex.shutdown(wait=wait, cancel_futures=cancel_futures)
        self._owned.clear()

    def _build(self) -> Executor:
        ex = self.rebuild()
        self._owned.append(ex)
        return ex

    def replace_broken(self, error: BaseException, lost: int, n: int) -> None:
        """The executor is dead: build a new one, or raise RemoteEvaluationError."""
        if self.rebuild is None:
            raise RemoteEvaluationError(
                f"the executor is broken ({type(error).__name__}: {error}): a worker died (killed, "
                f"out of memory), and a {type(self.current()).__name__} never recovers from that. "
                f"{lost} of {n} samples were not evaluated, so no estimate is returned (a partial "
                "one would be wrong). Fix: pass executor=Remote.process_pool(k) or "
                "Remote(executor, rebuild=lambda: ProcessPoolExecutor(k)) so scoregrad can start "
                "a fresh pool; use fewer workers or a smaller batch_size if workers run out of "
                "memory."
            ) from error
        old = self.executor
        self.executor = None
        if old is not None:
            old.shutdown(wait=False, cancel_futures=True)
            if old in self._owned:
                self._owned.remove(old)
        self.executor = self._build()
        self.stats.rebuilds += 1

    def __repr__(self) -> str:
        inner = type(self.executor).__name__ if self.executor is not None else "lazy"
        return f"Remote({inner}, workers={self.workers}, retries={self.retries})"


def _check_count(name, value, *, minimum=1, allow_none=False):
    if value is None and allow_none:
        return
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= minimum
    if not ok:
        raise ParameterError(f"{name} must be an integer ≥ {minimum}, got {value!r}.")


def map_batches(
    f: Callable,
    x: torch.Tensor,
    executor: Executor,
    batch_size: int | None = None,
) -> torch.Tensor:
    """f applied to consecutive batches of x (sample axis first) on ``executor``, concatenated.

    A plain executor gets the default policy (``Remote(executor)``: ``DEFAULT_RETRIES`` retries, no
    rebuild); pass a ``Remote`` to declare workers, retries or a rebuild. Raises
    ``RemoteEvaluationError`` rather than returning anything partial.
    """
    remote = executor if isinstance(executor, Remote) else Remote(executor)
    n = x.shape[0]
    if n == 0:
        return torch.empty(0)
    if batch_size is None:
        batch_size = max(1, math.ceil(n / (remote.workers * remote.tasks_per_worker)))
    _check_count("batch_size", batch_size)
    run = _BatchRun(f, x.detach(), remote, int(batch_size))
    return run.result()


class _BatchRun:
    """One call of map_batches: the queue of batches, the futures in flight, the results."""

    def __init__(self, f, x, remote: Remote, batch_size: int):
        self.f, self.x, self.remote = f, x, remote
        self.n = n = x.shape[0]
        self.bounds = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
        self.parts: list[torch.Tensor | None] = [None] * len(self.bounds)
        self.failures = [0] * len(self.bounds)
        self.queue = deque(range(len(self.bounds)))
        self.in_flight: dict[Future, int] = {}
        self.limit = remote.workers * remote.tasks_per_worker
        self.done = 0
        self.rebuilds = 0

    def result(self) -> torch.Tensor:
        while self.queue or self.in_flight:
            self._fill()
            finished, _ = wait(list(self.in_flight), return_when=FIRST_COMPLETED)
            broken = None
            for fut in finished:
                i = self.in_flight.pop(fut)
                try:
                    out = fut.result()
                except BrokenExecutor as err:
                    broken = err
                    self._resubmit([i])
                except Exception as err:
                    self._failed(i, err)
                else:
                    self._completed(i, out)
            if broken is not None:  # every other future of a dead executor is dead too
                self._executor_died(broken)
        return torch.cat(self.parts)

    def _fill(self) -> None:
        """Submit queued batches until ``workers × tasks_per_worker`` are in flight."""
        while self.queue and len(self.in_flight) < self.limit:
            i = self.queue.popleft()
            s, e = self.bounds[i]
            try:
                # clone: a view would pickle the whole storage of x into every task
                fut = self.remote.submit(self.f, self.x[s:e].clone())
            except BrokenExecutor as err:
                self.queue.appendleft(i)
                self._executor_died(err)
                continue
            except RuntimeError as err:  # e.g. "cannot schedule new futures after shutdown"
                self._cancel_all()
                raise RemoteEvaluationError(
                    f"the executor refused a task ({err}). {self.n - self.done} of {self.n} "
                    "samples were not evaluated. Fix: pass an executor that is running (not "
                    "shut down, e.g. use it inside its with-block), or Remote.process_pool(k), "
                    "which builds its own."
                ) from err
            self.in_flight[fut] = i

    def _completed(self, i: int, out) -> None:
        s, e = self.bounds[i]
        t = out.detach() if isinstance(out, torch.Tensor) else torch.as_tensor(np.asarray(out))
        self.parts[i] = t.reshape(1) if t.dim() == 0 else t
        self.done += e - s
        self.remote.stats.batches += 1
        self.remote.stats.samples += e - s

    def _resubmit(self, batches) -> None:
        for i in sorted(batches, reverse=True):
            s, e = self.bounds[i]
            self.queue.appendleft(i)
            self.remote.stats.resubmitted_batches += 1
            self.remote.stats.resubmitted_samples += e - s

    def _failed(self, i: int, err: Exception) -> None:
        """A batch raised: resubmit it, or give up after ``retries`` resubmissions."""
        self.failures[i] += 1
        if self.failures[i] <= self.remote.retries:
            self._resubmit([i])
            return
        self._cancel_all()
        s, e = self.bounds[i]
        pickling = "pickle" in f"{type(err).__name__} {err}".lower()
        hint = (
            " f must be picklable for process-based executors: define it at module level (not "
            "a lambda or a local function), or make it a callable object."
            if pickling
            else ""
        )
        raise RemoteEvaluationError(
            f"samples {s}..{e - 1} (batch {i + 1} of {len(self.bounds)}) failed "
            f"{self.failures[i]} times; last error {type(err).__name__}: {err}. "
            f"{self.n - self.done} of {self.n} samples were not evaluated, so no estimate is "
            f"returned (a partial one would be wrong).{hint} Fix f if it raised; if workers "
            "crash or run out of memory, use a fresh executor, fewer workers or a smaller "
            "batch_size; for a flaky cluster raise Remote(..., retries=k)."
        ) from err

    def _cancel_all(self) -> None:
        for fut in self.in_flight:
            fut.cancel()

    def _executor_died(self, err: BaseException) -> None:
        """Resubmit everything in flight on a rebuilt executor, or raise."""
        dead = list(self.in_flight.values())
        self._cancel_all()
        self.in_flight.clear()
        self._resubmit(dead)
        lost = self.n - self.done
        if self.rebuilds >= self.remote.retries and self.remote.rebuild is not None:
            raise RemoteEvaluationError(
                f"the executor broke {self.rebuilds + 1} times in one evaluation "
                f"({type(err).__name__}: {err}). {lost} of {self.n} samples were not evaluated, "
                "so no estimate is returned. Fix: check that f does not crash its worker "
                "(memory, native code); use fewer workers or a smaller batch_size."
            ) from err
        self.remote.replace_broken(err, lost, self.n)
        self.rebuilds += 1
