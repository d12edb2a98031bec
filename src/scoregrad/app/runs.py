"""Run folders: one per run, never overwritten.

A run writes everything it makes (checkpoint, logs, plots, results) into its folder, and keeps a
small ``run.json`` there: which command made it, its status (``running``, ``finished``,
``interrupted``), how far it got, its settings and any setting changed on a resume.

* Without ``--out`` a run gets a fresh folder, ``runs/<app>/<name>-<YYYYmmdd-HHMMSS>`` (``-2``,
  ``-3`` ... if two start in the same second), so two runs never share one.
* An explicit ``--out`` must be new or empty. If it holds a run, the command refuses and says how
  to continue it (``--resume``) or start afresh (``--force``, which *archives* the old run beside
  it as ``<out>.archived-<time>`` and says so; nothing is deleted). A folder that holds other
  files is never touched.

>>> import tempfile, pathlib
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> run = claim_run_folder(root / "a", app="demo", name="x")
>>> run.start({"lr": 0.1}, command="demo x")
>>> try:
...     claim_run_folder(root / "a", app="demo", name="x")
... except RunExistsError as e:
...     print("refused")
refused
>>> run2 = claim_run_folder(root / "a", app="demo", name="x", force=True)
>>> run2.archived.name.startswith("a.archived-")
True
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path

from ..errors import ScoregradError
from .checkpoint import CHECKPOINT_NAME

__all__ = [
    "RUN_RECORD",
    "RunExistsError",
    "RunFolder",
    "claim_run_folder",
    "default_run_folder",
    "claim_output_file",
]

#: the record of a run inside its folder
RUN_RECORD = "run.json"
#: where runs go without --out
RUNS_ROOT = Path("runs")


class RunExistsError(ScoregradError):
    """The output folder or file already holds a run (or other files)."""


def _now() -> _dt.datetime:
    return _dt.datetime.now().replace(microsecond=0)


def _stamp() -> str:
    return _now().strftime("%Y%m%d-%H%M%S")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in str(name)).strip("-") or "run"


def _unique(path: Path) -> Path:
    if not path.exists():
        return path
    k = 2
    while path.with_name(f"{path.name}-{k}").exists():
        k += 1
    return path.with_name(f"{path.name}-{k}")


def default_run_folder(app: str, name: str, root: str | os.PathLike | None = None) -> Path:
    """``runs/<app>/<name>-<timestamp>`` (not yet created), unique among existing folders."""
    base = Path(root) if root is not None else RUNS_ROOT
    return _unique(base / _safe(app) / f"{_safe(name)}-{_stamp()}")


def _holds_run(path: Path) -> bool:
    return (path / RUN_RECORD).exists() or (path / CHECKPOINT_NAME).exists()


class RunFolder:
    """A run's folder and its ``run.json`` record."""

    def __init__(self, path: str | os.PathLike, archived: Path | None = None):
        self.path = Path(path)
        self.archived = archived  # where --force moved the run that was here, if any

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT_NAME

    def read(self) -> dict:
        """The run record ({} for a folder without one, e.g. from an older version)."""
        try:
            return json.loads((self.path / RUN_RECORD).read_text())
        except (OSError, ValueError):
            return {}

    def _write(self, record: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.path / (RUN_RECORD + ".tmp")
        tmp.write_text(json.dumps(record, indent=1, default=str))
        os.replace(tmp, self.path / RUN_RECORD)

    def start(self, config: dict, *, command: str, progress: str = "") -> None:
        """Record a new run (status ``running``)."""
        now = _now().isoformat()
        self._write(
            {
                "command": command,
                "status": "running",
                "progress": progress,
                "created": now,
                "updated": now,
                "config": config,
                "changes": [],
            }  # fmt: skip
        )

    def update(self, *, status: str | None = None, progress: str | None = None, **extra) -> None:
        """Change the status or progress (and anything else) in the record."""
        record = self.read()
        if status is not None:
            record["status"] = status
        if progress is not None:
            record["progress"] = progress
        record.update(extra)
        record["updated"] = _now().isoformat()
        self._write(record)

    def log_changes(self, changes, config: dict) -> None:
        """Record settings changed on a resume (``--allow-changes``) and the new config."""
        record = self.read()
        record.setdefault("changes", []).append(
            {"at": _now().isoformat(), "options": [c.option for c in changes]}
        )
        record["config"] = config
        self._write(record)

    def describe(self) -> str:
        r = self.read()
        if not r:
            return "a run"
        bits = [r.get("status", "unknown") + " run"]
        if r.get("command"):
            bits.append(f"of `{r['command']}`")
        if r.get("progress"):
            bits.append(f"({r['progress']})")
        return " ".join(bits)


def claim_run_folder(
    out: str | os.PathLike | None, *, app: str, name: str, force: bool = False
) -> RunFolder:
    """The folder a new run writes to (see the module docstring); created, empty."""
    if out is None:
        path = default_run_folder(app, name)
        path.mkdir(parents=True)
        return RunFolder(path)
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise RunExistsError(
            f"--out {path} is a file, not a folder. Fix: pass a new or empty folder for the run."
        )
    archived = None
    if path.is_dir() and any(path.iterdir()):
        if not _holds_run(path):
            raise RunExistsError(
                f"--out {path} already holds files that are not a scoregrad run; a run never "
                "writes over them. Fix: pass a new or empty folder (or leave --out out for a "
                f"fresh one under {RUNS_ROOT}/)."
            )
        what = RunFolder(path).describe()
        if not force:
            raise RunExistsError(
                f"--out {path} already holds a {what}. A new run never overwrites one. Fix: "
                f"continue it with --resume {path} (give --episodes/--steps to extend its "
                "budget), start afresh with --force (the old run is moved to "
                f"{path.name}.archived-<time> beside it), or choose another --out."
            )
        archived = _unique(path.with_name(f"{path.name}.archived-{_stamp()}"))
        os.replace(path, archived)
    path.mkdir(parents=True, exist_ok=True)
    return RunFolder(path, archived)


def claim_output_file(path: str | os.PathLike, *, force: bool = False, option: str = "--out"):
    """Check, before any work, that a result file may be written at ``path``.

    An existing file is refused; with ``force`` it is moved to ``<stem>.archived-<time><suffix>``
    (returned) so that nothing is lost. A folder at ``path`` is always refused.
    """
    path = Path(path)
    if path.is_dir():
        raise RunExistsError(f"{option} {path} is a folder. Fix: pass a file name.")
    if not path.exists():
        if not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        return None
    if not force:
        raise RunExistsError(
            f"{option} {path} already exists; results are never written over. Fix: choose "
            "another name, or pass --force (the old file is moved aside, not deleted)."
        )
    archived = _unique(path.with_name(f"{path.stem}.archived-{_stamp()}{path.suffix}"))
    os.replace(path, archived)
    return archived
