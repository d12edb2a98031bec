"""The toolkit every application (rl, vi, finance, compare, demo) is built on.

* ``runs``: run folders that are never overwritten (unique defaults, ``--force`` archives) and
  the ``run.json`` record of a run's status;
* ``checkpoint``: atomic writes, ``weights_only`` loads, one clear error for a damaged file;
* ``config``: a run's settings saved with it, and the rules of a resume (saved settings kept,
  budgets extended only when asked, changed settings refused or, when allowed, logged);
* ``seeding``: private generators derived from one seed, never the global RNG;
* ``plotting``: figures drawn without pyplot, so the caller's matplotlib backend is untouched;
* ``cli``: command groups with one error path, the common options, lazily loaded commands and
  names spelled one way (old spellings accepted with a note).

Nothing here imports torch, gymnasium or scikit-learn at import time: ``scoregrad --help`` stays
fast. See ``docs/runs.md`` for what users see.
"""

from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .config import Change, ConfigChangeError, ResumePolicy, reconcile
from .runs import RunExistsError, RunFolder, claim_run_folder, default_run_folder

__all__ = [
    "CheckpointError",
    "load_checkpoint",
    "save_checkpoint",
    "Change",
    "ConfigChangeError",
    "ResumePolicy",
    "reconcile",
    "RunExistsError",
    "RunFolder",
    "claim_run_folder",
    "default_run_folder",
]
