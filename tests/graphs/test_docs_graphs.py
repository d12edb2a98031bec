"""The runnable example of docs/graphs.md runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_graphs_doc_example_runs():
    text = (ROOT / "docs" / "graphs.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1 and len(blocks[0].strip().splitlines()) <= 20
    exec(compile(blocks[0], "docs/graphs.md", "exec"), {})
