"""The application toolkit: run folders, checkpoints, resume rules, figures, lazy imports."""

import json
import subprocess
import sys

import pytest
import torch

from scoregrad.app import (
    CheckpointError,
    ConfigChangeError,
    ResumePolicy,
    RunExistsError,
    claim_run_folder,
    default_run_folder,
    load_checkpoint,
    reconcile,
    save_checkpoint,
)
from scoregrad.app.names import Names, UnknownNameError
from scoregrad.app.plotting import new_figure, save_figure
from scoregrad.app.runs import claim_output_file


def test_default_run_folders_are_unique(tmp_path):
    a = default_run_folder("rl", "CartPole-v1", root=tmp_path)
    a.mkdir(parents=True)
    b = default_run_folder("rl", "CartPole-v1", root=tmp_path)
    assert a != b and a.parent == b.parent == tmp_path / "rl"
    assert a.name.startswith("CartPole-v1-")


def test_a_run_is_refused_then_archived_never_deleted(tmp_path):
    run = claim_run_folder(tmp_path / "r", app="t", name="x")
    run.start({"lr": 1}, command="t x", progress="3/10 steps")
    (run.path / "log.txt").write_text("old")
    with pytest.raises(RunExistsError) as e:
        claim_run_folder(tmp_path / "r", app="t", name="x")
    assert "--resume" in str(e.value) and "--force" in str(e.value) and "3/10 steps" in str(e.value)
    new = claim_run_folder(tmp_path / "r", app="t", name="x", force=True)
    assert list(new.path.iterdir()) == []
    assert (new.archived / "log.txt").read_text() == "old"
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunExistsError, match="is a file"):
        claim_run_folder(tmp_path / "file", app="t", name="x", force=True)


def test_output_files_are_moved_aside_only_with_force(tmp_path):
    p = tmp_path / "out.json"
    assert claim_output_file(p) is None
    p.write_text("1")
    with pytest.raises(RunExistsError, match="already exists"):
        claim_output_file(p)
    moved = claim_output_file(p, force=True)
    assert moved.read_text() == "1" and not p.exists()


@pytest.mark.parametrize(
    "content, phrase",
    [
        (b"", "is empty (0 bytes)"),
        (b"not a checkpoint at all", "cannot be read"),
        (None, "cannot be read"),  # truncated
    ],
)
def test_damaged_checkpoints_give_one_clear_error(tmp_path, content, phrase):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"format": "t/1", "x": torch.arange(1000)})
    if content is None:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path, format="t/1")
    assert phrase in str(e.value) and "Fix:" in str(e.value) and "\n" not in str(e.value)


def test_checkpoints_are_written_atomically_and_loaded_safely(tmp_path):
    path = save_checkpoint(tmp_path / "checkpoint.pt", {"format": "t/1", "w": torch.ones(2)})
    assert not list(tmp_path.glob("*.tmp"))
    assert torch.equal(load_checkpoint(tmp_path, format="t/1")["w"], torch.ones(2))  # a folder
    torch.save({"format": "t/1", "obj": object.__new__(ResumePolicy)}, path)  # needs pickle
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    save_checkpoint(path, {"format": "other/1"})
    with pytest.raises(CheckpointError, match="not a checkpoint of this kind"):
        load_checkpoint(path, format="t/1")


def test_reconcile_budgets_fixed_and_changeable_settings():
    policy = ResumePolicy(budget=("steps",), fixed=("seed",), flags={"n": "--samples"})
    saved = {"steps": 100, "lr": 0.003, "seed": 0, "n": 4}
    assert reconcile(saved, {}, policy) == (saved, [])
    assert reconcile(saved, {"steps": 200, "lr": 0.003}, policy)[0]["steps"] == 200
    with pytest.raises(ConfigChangeError) as e:
        reconcile(saved, {"lr": 0.01, "n": 8, "seed": 1}, policy)
    text = str(e.value)
    for part in ("--lr 0.01 (saved 0.003)", "--samples 8 (saved 4)", "--seed 1 (saved 0)"):
        assert part in text
    assert "--allow-changes" not in text  # a fixed setting cannot be allowed
    with pytest.raises(ConfigChangeError, match="--allow-changes"):
        reconcile(saved, {"lr": 0.01}, policy)
    config, accepted = reconcile(saved, {"lr": 0.01}, policy, allow_changes=True)
    assert config["lr"] == 0.01 and [c.option for c in accepted] == ["--lr 0.01 (saved 0.003)"]
    only = ResumePolicy(budget=("steps",), changeable=("lr",))
    with pytest.raises(ConfigChangeError, match="--n 8"):
        reconcile(saved, {"n": 8}, only, allow_changes=True)


def test_names_aliases_and_errors():
    names = Names("baseline", ["none", "moving-average"], {"ma": "moving-average"})
    notes = []
    assert names.resolve("ma", note=notes.append) == "moving-average"
    assert names.resolve("moving_average", note=notes.append) == "moving-average"
    assert len(notes) == 2 and "deprecated" in notes[0]
    with pytest.raises(
        UnknownNameError, match="--baseline: unknown baseline 'x'.*none, moving-average"
    ):
        names.resolve("x", option="--baseline")


def test_figures_leave_the_backend_and_pyplot_alone(tmp_path):
    import matplotlib

    backend = matplotlib.get_backend()
    fig, ax = new_figure(figsize=(3, 2), ncols=2)
    ax[0].plot([0, 1])
    path = save_figure(fig, tmp_path / "f.png")
    assert path.read_bytes()[:4] == b"\x89PNG"
    assert matplotlib.get_backend() == backend
    if "matplotlib.pyplot" in sys.modules:
        assert sys.modules["matplotlib.pyplot"].get_fignums() == []


HELP_COMMANDS = [
    ["--help"],
    ["rl", "--help"],
    ["rl", "train", "--help"],
    ["vi", "--help"],
    ["vi", "sbn", "--help"],
    ["greeks", "--help"],
    ["compare", "--help"],
    ["demo", "--help"],
]


@pytest.mark.parametrize("argv", HELP_COMMANDS, ids=" ".join)
def test_help_imports_no_heavy_package(argv):
    """--help answers without torch, gymnasium, scikit-learn, NumPy or matplotlib (which is what
    keeps it under a second); checked by the modules loaded, not by a timer."""
    code = (
        "import sys\n"
        "from scoregrad.cli import app\n"
        f"try:\n    app({argv!r})\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "heavy = ('torch', 'gymnasium', 'sklearn', 'numpy', 'matplotlib')\n"
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout[-500:]


def test_lazy_package_exports_still_work():
    import scoregrad as sg
    import scoregrad.rl as rl

    assert sg.ScoreFunction.__name__ == "ScoreFunction" and "estimate_grad" in dir(sg)
    assert callable(rl.evaluate) and rl.Trainer.__name__ == "Trainer"
    import scoregrad.diagnostics as diag
    import scoregrad.finance as fin
    import scoregrad.vi as vi

    assert callable(vi.fit) and vi.FitResult.__name__ == "FitResult"  # the function, not a module
    assert callable(diag.compare) and diag.problems.get("normal_square").name
    assert fin.GBM.__name__ == "GBM" and callable(fin.run.run_greeks)
    from scoregrad.finance.models import MODELS
    from scoregrad.finance.names import MODEL_NAMES

    assert MODEL_NAMES == tuple(MODELS)
    with pytest.raises(AttributeError):
        sg.no_such_name  # noqa: B018
    json.dumps(sorted(sg.__all__))
