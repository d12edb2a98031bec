"""Every runnable example in the docs runs: README code blocks and module docstrings (doctest)."""

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import scoregrad

ROOT = Path(__file__).resolve().parents[1]


def _modules():
    for info in pkgutil.walk_packages(scoregrad.__path__, "scoregrad."):
        try:
            yield importlib.import_module(info.name)
        except ModuleNotFoundError:  # an application whose optional extra is not installed
            continue


@pytest.mark.parametrize("module", list(_modules()), ids=lambda m: m.__name__)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_readme_python_blocks_run():
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


@pytest.mark.parametrize("page", ["speed.md"])
def test_docs_page_python_blocks_run(page):
    text = (ROOT / "docs" / page).read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, page, "exec"), {})
