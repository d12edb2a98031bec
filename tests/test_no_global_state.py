"""No process-wide switches: the library never seeds torch's global RNG, changes the default
dtype, flips torch.distributions' validation default or switches matplotlib's backend. Checked
on the source (every call site, not only the ones a test happens to run) and by running the
commands that used to switch the default dtype."""

from __future__ import annotations

import re
from pathlib import Path

import torch

import scoregrad

SRC = Path(scoregrad.__file__).parent

#: calls that change process-wide state, whatever the module that makes them
FORBIDDEN = {
    "torch.set_default_dtype": re.compile(r"\bset_default_dtype\("),
    "torch.manual_seed / torch.random.manual_seed": re.compile(
        r"\btorch(\.random)?\.manual_seed\("
    ),
    "matplotlib.use": re.compile(r"\bmatplotlib\.use\("),
    "torch.set_default_device": re.compile(r"\bset_default_device\("),
    "Distribution.set_default_validate_args": re.compile(r"\bset_default_validate_args\("),
}


def test_no_module_calls_a_process_wide_switch():
    hits = []
    for path in sorted(SRC.rglob("*.py")):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            for what, pattern in FORBIDDEN.items():
                if pattern.search(line):
                    hits.append(f"{path.relative_to(SRC)}:{i}: {what}")
    assert not hits, "\n".join(hits)


def test_logistic_guide_in_float64_leaves_the_default_dtype():
    from scoregrad.vi.guides import MeanFieldNormal

    before = torch.get_default_dtype()
    g = MeanFieldNormal(3, init_scale=0.1, dtype=torch.float64)
    assert g.loc.dtype == g.log_scale.dtype == torch.float64
    assert abs(float(g.log_scale[0].exp()) - 0.1) < 1e-15
    assert torch.get_default_dtype() == before
