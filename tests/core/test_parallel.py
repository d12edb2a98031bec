"""Remote evaluation: the same estimate as in-process for the same seed, on real executors."""

from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest
import torch

import scoregrad as sg
from scoregrad import problems as P


def _run(problem, **kw):
    return sg.estimate_grad(
        problem.f,
        problem.dist_fn,
        problem.params(),
        n=4096,
        seed=11,
        estimator=sg.ScoreFunction(sg.baselines.LeaveOneOut()),
        **kw,
    )


def test_thread_and_process_pools_give_identical_estimates():
    problem = P.get("normal_cos")
    local = _run(problem)
    with ThreadPoolExecutor(2) as ex:
        threads = _run(problem, executor=ex, batch_size=1000)
    with ProcessPoolExecutor(2) as ex:
        procs = _run(problem, executor=ex, batch_size=1000)
    for other in (threads, procs):
        assert torch.equal(local.grad["mu"], other.grad["mu"])
        assert torch.equal(local.value, other.value)
        assert other.n_evals == 4096


def test_dask_local_cluster_gives_identical_estimate():
    distributed = pytest.importorskip("dask.distributed")
    problem = P.get("poisson_polynomial")
    local = _run(problem)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        remote = _run(problem, executor=client.get_executor(), batch_size=512)
    assert torch.equal(local.grad["log_rate"], remote.grad["log_rate"])
    assert torch.equal(local.value, remote.value)
