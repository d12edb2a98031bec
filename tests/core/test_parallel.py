"""Remote evaluation: the same estimate as in-process for the same seed, on real executors, even
when a worker is killed mid-estimate; nothing partial when a batch cannot be evaluated."""

from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest
import torch

import scoregrad as sg
from scoregrad import problems as P
from scoregrad.core import Remote, map_batches
from scoregrad.testing import CrashOnce

N = 4096


def _run(problem, f=None, **kw):
    return sg.estimate_grad(
        f or problem.f,
        problem.dist_fn,
        problem.params(),
        n=N,
        seed=11,
        estimator=sg.ScoreFunction(sg.baselines.LeaveOneOut()),
        **kw,
    )


def _assert_identical(local, remote):
    for k in local.grad:
        assert torch.equal(local.grad[k], remote.grad[k])
        assert torch.equal(local.stderr[k], remote.stderr[k])
    assert torch.equal(local.value, remote.value)
    assert remote.n_evals == N


def test_thread_and_process_pools_give_identical_estimates():
    problem = P.get("normal_cos")
    local = _run(problem)
    with ThreadPoolExecutor(2) as ex:
        threads = _run(problem, executor=ex, batch_size=1000)
    with ProcessPoolExecutor(2) as ex:
        procs = _run(problem, executor=ex, batch_size=1000)
    _assert_identical(local, threads)
    _assert_identical(local, procs)


def test_default_batch_size_keeps_every_declared_worker_busy():
    seen = []

    def f(x):
        seen.append(x.shape[0])
        return x

    with ThreadPoolExecutor(3) as ex:
        out = map_batches(f, torch.arange(1200.0), Remote(ex, workers=3))
    assert torch.equal(out, torch.arange(1200.0))
    assert sorted(seen) == [100] * 12  # 3 workers × 4 tasks each


def test_killed_process_worker_is_resubmitted_on_a_rebuilt_pool(tmp_path):
    problem = P.get("normal_cos")
    local = _run(problem)
    marker = tmp_path / "kill"
    marker.write_text("")
    with Remote.process_pool(2) as remote:
        remote_est = _run(problem, CrashOnce(problem.f, marker), executor=remote, batch_size=256)
    assert not marker.exists()  # a worker really died
    _assert_identical(local, remote_est)
    stats = remote.stats
    print(f"\nprocess pool, killed worker: {stats}; n_evals={remote_est.n_evals} of n={N}")
    assert stats.rebuilds == 1
    assert stats.samples == N  # lost: 0
    assert stats.resubmitted_batches >= 1


def test_killed_worker_without_rebuild_says_what_was_lost(tmp_path):
    problem = P.get("normal_cos")
    marker = tmp_path / "kill"
    marker.write_text("")
    with ProcessPoolExecutor(2) as ex:
        with pytest.raises(sg.RemoteEvaluationError, match=r"of 4096 samples were not evaluated"):
            _run(problem, CrashOnce(problem.f, marker), executor=ex, batch_size=256)


def test_flaky_batch_is_resubmitted():
    problem = P.get("normal_cos")
    local = _run(problem)

    class FailsOnce:
        def __init__(self):
            self.failed = False

        def __call__(self, x):
            if not self.failed:
                self.failed = True
                raise OSError("connection reset")
            return problem.f(x)

    with ThreadPoolExecutor(2) as ex:
        remote = Remote(ex, workers=2)
        est = _run(problem, FailsOnce(), executor=remote)
    _assert_identical(local, est)
    assert remote.stats.resubmitted_batches == 1 and remote.stats.samples == N


def test_batch_that_always_fails_raises_with_the_count():
    def f(x):
        if bool((x == 7).any()):
            raise ValueError("cannot evaluate 7")
        return x

    with ThreadPoolExecutor(2) as ex:
        remote = Remote(ex, workers=2, retries=2)
        with pytest.raises(sg.RemoteEvaluationError) as info:
            map_batches(f, torch.arange(100.0), remote, batch_size=10)
    msg = str(info.value)
    assert "samples 0..9 (batch 1 of 10) failed 3 times" in msg
    assert "cannot evaluate 7" in msg
    lost = int(msg.split(" of 100 samples were not evaluated")[0].split()[-1])
    assert 10 <= lost <= 100  # at least the failing batch; nothing partial comes back
    assert remote.stats.resubmitted_batches == 2


def test_unpicklable_f_and_a_shut_down_executor_are_named():
    with ProcessPoolExecutor(1) as ex:
        with pytest.raises(sg.RemoteEvaluationError, match="module level"):
            map_batches(lambda x: x, torch.ones(4), Remote(ex, workers=1, retries=0))
    with pytest.raises(sg.RemoteEvaluationError, match="shut down"):
        map_batches(torch.square, torch.ones(4), ex)


def test_bad_remote_arguments_are_named():
    with ThreadPoolExecutor(1) as ex:
        for kw in ({"workers": 0}, {"retries": -1}, {"tasks_per_worker": 1.5}):
            with pytest.raises(sg.ParameterError, match=next(iter(kw))):
                Remote(ex, **kw)
        with pytest.raises(sg.ParameterError, match="batch_size"):
            map_batches(lambda x: x, torch.ones(3), ex, batch_size=0)
    with pytest.raises(sg.ParameterError, match="rebuild"):
        Remote()
    with pytest.raises(sg.ParameterError, match="Executor"):
        Remote(object())


@pytest.fixture(scope="module")
def dask_client():
    """Two worker processes; a task whose worker dies fails at once (allowed-failures 0, instead
    of Dask rerunning it), so the test exercises scoregrad's own resubmission."""
    dask = pytest.importorskip("dask")
    distributed = pytest.importorskip("dask.distributed")
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def test_dask_local_cluster_gives_identical_estimate(dask_client):
    problem = P.get("poisson_polynomial")
    local = _run(problem)
    remote = _run(problem, executor=dask_client.get_executor(), batch_size=512)
    _assert_identical(local, remote)


def test_dask_worker_killed_mid_task_loses_nothing(dask_client, tmp_path):
    problem = P.get("poisson_polynomial")
    local = _run(problem)
    marker = tmp_path / "kill"
    marker.write_text("")
    remote = Remote.dask(dask_client)
    assert remote.workers == 2
    est = _run(problem, CrashOnce(problem.f, marker), executor=remote, batch_size=512)
    assert not marker.exists()  # a worker process really died
    _assert_identical(local, est)
    print(f"\ndask, killed worker: {remote.stats}; n_evals={est.n_evals} of n={N}")
    assert remote.stats.samples == N  # lost: 0
    assert remote.stats.resubmitted_batches >= 1  # the KilledWorker batch, resubmitted
