"""State that round-trips: for every stateful estimator, baseline, control variate and sampler,
``state_dict()`` → ``torch.save`` → ``torch.load(weights_only=True)`` → ``load_state_dict()`` into
a *fresh* object reproduces the next estimates bit for bit (both doors). The objects are found by
their declared ``stateful`` property, not from a hand-kept list."""

import inspect
import io

import pytest
import torch
from torch.distributions import Bernoulli

import scoregrad as sg
from scoregrad import baselines, control_variates, estimators, sampling

N = 64
KINDS = {
    "estimator": (estimators, estimators.Estimator),
    "baseline": (baselines, baselines.Baseline),
    "control variate": (control_variates, control_variates.ControlVariate),
    "sampler": (sampling, sampling.Sampler),
}


def _public_classes():
    for kind, (module, base) in KINDS.items():
        for name, cls in vars(module).items():
            if inspect.isclass(cls) and issubclass(cls, base) and not name.startswith("_"):
                if cls is not base:
                    yield kind, cls


def _declares_stateful(cls) -> bool:
    """True when the class itself declares stateful = True (a property is decided per object)."""
    return inspect.getattr_static(cls, "stateful", False) is True


STATEFUL = sorted(
    {(kind, cls) for kind, cls in _public_classes() if _declares_stateful(cls)},
    key=lambda kc: kc[1].__name__,
)


def _as_estimator(kind, obj):
    """Something estimate_grad and expectation can run: the object itself or a ScoreFunction."""
    if kind == "estimator":
        return obj
    slot = {"baseline": "baseline", "control variate": "control_variate", "sampler": "sampler"}
    return sg.ScoreFunction(**{slot[kind]: obj})


def _f(b):  # differentiable in b (REBAR evaluates it at relaxed inputs)
    return ((b - 0.3) ** 2).sum(-1)


CONTEXT = torch.linspace(-1, 1, N * 2).reshape(N, 2)


def _step(est, door, seed, context, dtype=torch.float32):
    """One estimate; the numbers that must agree bit for bit."""
    theta = torch.tensor([0.4, -0.7, 1.1], dtype=dtype, requires_grad=True)
    context = None if context is None else context.to(dtype)
    if door == "estimate_grad":
        out = sg.estimate_grad(
            _f, lambda theta: Bernoulli(logits=theta), {"theta": theta}, n=N, estimator=est,
            seed=seed, context=context,
        )  # fmt: skip
        return [out.value, out.grad["theta"], out.stderr["theta"]]
    loss = sg.expectation(_f, Bernoulli(logits=theta), n=N, estimator=est, seed=seed,
                          context=context)  # fmt: skip
    (g,) = torch.autograd.grad(loss, theta)
    return [loss.detach(), g]


def _reload(state):
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_stateful_objects_are_found():
    names = {cls.__name__ for _, cls in STATEFUL}
    assert {"MovingAverage", "Learned", "RELAX", "REBAR"} <= names


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("door", ["estimate_grad", "expectation"])
@pytest.mark.parametrize("with_context", [False, True], ids=["no-context", "context"])
@pytest.mark.parametrize("kind,cls", STATEFUL, ids=lambda v: getattr(v, "__name__", v))
def test_state_round_trips_into_a_fresh_object(kind, cls, with_context, door, dtype):
    context = CONTEXT if with_context else None
    original = cls()
    est = _as_estimator(kind, original)
    assert est.stateful
    for seed in range(3):  # learn something first
        _step(est, door, seed, context, dtype)
    state = _reload(est.state_dict())
    fresh_obj = cls()
    fresh = _as_estimator(kind, fresh_obj)
    fresh.load_state_dict(state)
    for seed in (3, 4):  # two steps: the optimiser's moments must have been restored as well
        a, b = _step(est, door, seed, context, dtype), _step(fresh, door, seed, context, dtype)
        for x, y in zip(a, b, strict=True):
            assert torch.equal(x, y), (cls.__name__, seed, x, y)
    # the object's own state round-trips as well (baselines are checkpointed on their own)
    own = _reload(original.state_dict())
    again = cls()
    again.load_state_dict(own)
    assert _flat(again.state_dict()) == _flat(original.state_dict())


def _flat(state, prefix=""):
    """(path, value) leaves of a state, tensors as (dtype, shape, values) for comparison."""
    if isinstance(state, dict):
        return [kv for k, v in state.items() for kv in _flat(v, f"{prefix}/{k}")]
    if isinstance(state, (list, tuple)):
        return [kv for i, v in enumerate(state) for kv in _flat(v, f"{prefix}/{i}")]
    if isinstance(state, torch.Tensor):
        return [(prefix, (state.dtype, tuple(state.shape), state.tolist()))]
    return [(prefix, state)]


def _default_instances():
    for kind, cls in _public_classes():
        try:
            yield kind, cls()
        except TypeError:  # needs arguments (Constant(c), UserControlVariate(h, mean)): no state
            continue


@pytest.mark.filterwarnings("ignore::scoregrad.sampling.QMCDiscreteWarning")
@pytest.mark.parametrize(
    "kind,obj",
    list(_default_instances()),
    ids=lambda v: type(v).__name__ if not isinstance(v, str) else v,
)
def test_objects_that_keep_state_declare_it(kind, obj):
    """Anything whose state_dict carries values after a run declares stateful = True."""
    est = _as_estimator(kind, obj)
    try:
        _step(est, "estimate_grad", 0, None)
    except sg.ScoregradError:  # not applicable to this Bernoulli problem (e.g. Pathwise)
        pass
    leaves = [v for _, v in _flat(obj.state_dict())]
    assert bool(leaves) == bool(obj.stateful), (type(obj).__name__, obj.state_dict())


def test_float64_learned_network_is_rebuilt_in_float64():
    b = baselines.Learned()
    ctx = CONTEXT.double()
    b.update(torch.ones(N, dtype=torch.float64), ctx)
    fresh = baselines.Learned()
    fresh.load_state_dict(_reload(b.state_dict()))
    assert next(fresh.model.parameters()).dtype == torch.float64
    assert torch.equal(fresh(torch.zeros(N, dtype=torch.float64), context=ctx),
                       b(torch.zeros(N, dtype=torch.float64), context=ctx))  # fmt: skip


def test_state_of_a_user_model_needs_that_model():
    net = torch.nn.Sequential(torch.nn.Linear(2, 1))
    b = baselines.Learned(model=net)
    b.update(torch.ones(N), CONTEXT)
    with pytest.raises(sg.ScoregradError, match="Learned\\(model=...\\)"):
        baselines.Learned().load_state_dict(_reload(b.state_dict()))
