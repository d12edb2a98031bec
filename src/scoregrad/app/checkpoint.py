"""Checkpoints: written atomically, read with ``torch.load(weights_only=True)``, and every way a
file can be unusable (missing, empty, truncated, corrupt, another program's) reported as one
``CheckpointError`` paragraph that names the file and the fix.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = save_checkpoint(d / "checkpoint.pt", {"format": "demo/1", "step": 3})
>>> load_checkpoint(d / "checkpoint.pt", format="demo/1")["step"]
3
>>> (d / "empty.pt").write_bytes(b"")
0
>>> try:
...     load_checkpoint(d / "empty.pt", format="demo/1")
... except CheckpointError as e:
...     print("is empty (0 bytes)" in str(e))
True
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ScoregradError

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "CHECKPOINT_NAME"]

#: the checkpoint's file name inside a run folder
CHECKPOINT_NAME = "checkpoint.pt"


class CheckpointError(ScoregradError):
    """A checkpoint that cannot be used: missing, empty, damaged, or written by something else."""


def save_checkpoint(path: str | os.PathLike, payload: dict) -> Path:
    """Write ``payload`` with ``torch.save`` to a temporary file beside ``path``, flush it to disk
    and rename it over ``path``: a crash mid-write leaves the previous checkpoint intact."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        torch.save(payload, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A run folder means the checkpoint inside it."""
    path = Path(path)
    return path / CHECKPOINT_NAME if path.is_dir() else path


def load_checkpoint(
    path: str | os.PathLike, *, format: str | None = None, written_by: str = "scoregrad"
) -> dict:
    """Load a checkpoint (a file, or a run folder holding ``checkpoint.pt``) safely.

    ``format``, when given, must equal the file's ``"format"`` entry; ``written_by`` names the
    command that writes such files, for the message.
    """
    import torch

    path = resolve_checkpoint(path)
    where = str(path)
    restart = (
        "Fix: resume from an intact copy, or start the run again (a new --out, or --force to "
        "archive this one)."
    )
    if not path.exists():
        raise CheckpointError(
            f"no checkpoint at {where}. Fix: pass a run folder or the {CHECKPOINT_NAME} written "
            f"by {written_by}."
        )
    if path.stat().st_size == 0:
        raise CheckpointError(
            f"the checkpoint {where} is empty (0 bytes): it was truncated, or the run stopped "
            f"while creating it. {restart}"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises RuntimeError, EOFError, UnpicklingError, zip errors
        reason = " ".join(str(e).split())[:160] or type(e).__name__
        raise CheckpointError(
            f"the checkpoint {where} cannot be read ({reason}): it is truncated, corrupt, or "
            f"not a checkpoint. {restart}"
        ) from e
    if format is not None and (not isinstance(state, dict) or state.get("format") != format):
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            f"{where} is not a checkpoint of this kind (format {found!r}, expected {format!r}). "
            f"Fix: pass the {CHECKPOINT_NAME} written by {written_by}."
        )
    return state
