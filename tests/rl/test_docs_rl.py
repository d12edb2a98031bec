"""The runnable example of docs/rl.md (the block that starts with ``# runnable``) runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_rl_doc_example_runs():
    text = (ROOT / "docs" / "rl.md").read_text()
    blocks = [
        b
        for b in re.findall(r"```python\n(.*?)```", text, flags=re.S)
        if b.startswith("# runnable")
    ]
    assert len(blocks) == 1
    exec(compile(blocks[0], "docs/rl.md", "exec"), {})
