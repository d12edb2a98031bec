"""The command line's shared pieces: one error path, the common options, lazily loaded commands
and names spelled one way.

* ``CommandGroup`` (``group()`` makes a Typer group with it): every ``ScoregradError`` raised by a
  command becomes ``error: <one paragraph>`` on stderr and exit code 2, an ``OSError`` names the
  file, anything else says it is a bug and exits 1; never a traceback, unless ``--debug`` (or
  ``SCOREGRAD_DEBUG=1``) asks for one. Commands registered with ``lazy`` are imported only
  when they run or show their own help, so ``scoregrad --help`` does not import torch.
* The common options (``OUT``, ``SEED``, ``RESUME``, ``JSON``, ``PROGRESS``, ``FORCE``,
  ``ALLOW_CHANGES``): the same name and meaning in every command.
* ``explicit(ctx)``: which options the user typed (a resume compares only those).
* ``finite``, ``write_json``: small checks and outputs every command needs.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperCommand, TyperGroup

from ..errors import ScoregradError

__all__ = [
    "CommandGroup",
    "group",
    "explicit",
    "choose",
    "finite",
    "write_json",
    "note",
    "OUT",
    "SEED",
    "RESUME",
    "JSON",
    "PROGRESS",
    "FORCE",
    "ALLOW_CHANGES",
    "DEBUG_ENV",
    "OWNS_PROCESS",
]

DEBUG_ENV = "SCOREGRAD_DEBUG"
#: key of the root context's ``obj`` set by the console entry point: the command owns its process
#: (so process-wide settings such as torch's thread count are its own to choose)
OWNS_PROCESS = "owns_process"
_DEBUG_KEY = "scoregrad.debug"

OUT = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="Folder for this run (must be new or empty; default: a fresh runs/<app>/<name>-<time>).",
    ),
]
SEED = Annotated[int, typer.Option("--seed", help="Seed of the run's private generators.")]
RESUME = Annotated[
    Path | None,
    typer.Option("--resume", help="Continue the run in this folder (or checkpoint.pt), as saved."),
]
JSON = Annotated[
    Path | None,
    typer.Option("--json", help="Also write the results as JSON to this file ('-': stdout)."),
]
PROGRESS = Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")]
FORCE = Annotated[
    bool,
    typer.Option(
        "--force", help="Start afresh where a run exists: the old one is archived, not deleted."
    ),
]
ALLOW_CHANGES = Annotated[
    bool,
    typer.Option(
        "--allow-changes",
        help="On --resume, accept settings that differ from the saved ones (logged).",
    ),
]


def _paragraph(text: str) -> str:
    return " ".join(str(text).split())


def note(message: str) -> None:
    """A one-paragraph note on stderr (deprecations, archived runs, accepted changes)."""
    typer.secho(f"note: {_paragraph(message)}", fg=typer.colors.YELLOW, err=True)


def _debug(ctx: typer.Context) -> bool:
    return bool(ctx.meta.get(_DEBUG_KEY)) or os.environ.get(DEBUG_ENV, "") not in ("", "0")


def _report(e: BaseException) -> int:
    if isinstance(e, ScoregradError):
        msg, code = str(e), 2
    elif isinstance(e, OSError) and e.filename is not None:
        msg, code = f"{e.strerror or e}: {e.filename}. Fix: check the path and its permissions.", 2
    else:
        msg = (
            f"unexpected {type(e).__name__}: {e}. This is a bug in scoregrad or an input it does "
            "not check yet; rerun with --debug to see the traceback, and please report it."
        )
        code = 1
    typer.secho(f"error: {_paragraph(msg)}", fg=typer.colors.RED, err=True)
    return code


class CommandGroup(TyperGroup):
    """A Typer group with one error path and lazily imported commands (see the module doc).

    ``lazy`` (a class attribute of a subclass): ``{name: (module, short help)}``; the module's
    ``register(app)`` adds the command or group called ``name``.
    """

    lazy: Mapping[str, tuple[str, str]] = {}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._listing = False

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except (typer.TyperException, typer.Exit, typer.Abort):  # usage errors, --help, exits
            raise
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as e:
            if _debug(ctx):
                raise
            raise typer.Exit(_report(e)) from None

    # -- lazy commands -----------------------------------------------------------------------------
    def list_commands(self, ctx):
        return [*super().list_commands(ctx), *(n for n in self.lazy if n not in self.commands)]

    def get_command(self, ctx, name):
        if name in self.commands or name not in self.lazy:
            return super().get_command(ctx, name)
        module, short = self.lazy[name]
        if self._listing:  # the parent's help lists it: no import needed
            return TyperCommand(name, help=short, short_help=short)
        holder = typer.Typer()
        try:
            importlib.import_module(module).register(holder)
        except ModuleNotFoundError as e:
            extra = {"gymnasium": "rl", "sklearn": "vi"}.get((e.name or "").split(".")[0])
            if extra is None:
                raise
            raise _MissingExtra(name, e.name, extra) from None
        command = typer.main.get_group(holder).commands[name]
        self.commands[name] = command
        return command

    def format_help(self, ctx, formatter):
        self._listing = True
        try:
            return super().format_help(ctx, formatter)
        finally:
            self._listing = False


class _MissingExtra(ScoregradError):
    def __init__(self, command: str, module: str, extra: str):
        super().__init__(
            f"`scoregrad {command}` needs the optional dependency {module}, which is not "
            f'installed. Fix: pip install "scoregrad[{extra}]".'
        )


def group(help: str, **kwargs) -> typer.Typer:
    """A command group (``scoregrad rl``, ``scoregrad vi``) with the shared error path."""
    return typer.Typer(
        help=help, no_args_is_help=True, cls=CommandGroup, pretty_exceptions_enable=False, **kwargs
    )


def set_debug(ctx: typer.Context, debug: bool) -> None:
    """Called by the root command's ``--debug`` option."""
    if debug:
        ctx.meta[_DEBUG_KEY] = True


def explicit(ctx: typer.Context) -> set[str]:
    """Names of the parameters the user gave on the command line (not defaults, not env)."""
    typed = ("COMMANDLINE", "ENVIRONMENT")
    return {
        name
        for name in ctx.params
        if getattr(ctx.get_parameter_source(name), "name", None) in typed
    }


def choose(names, value: str, option: str, *, many: bool = False):
    """A command-line name (or comma-separated list, ``many``) resolved by a ``Names``: an old
    spelling gives a note, an unknown one a usage error naming ``option`` and the valid names
    (a usage error, so it reads the same in any Typer app that registers the command)."""
    from .names import UnknownNameError

    try:
        if many:
            return names.resolve_list(value, option=option, note=note)
        return names.resolve(value, option=option, note=note)
    except UnknownNameError as e:
        raise typer.BadParameter(str(e).removeprefix(f"{option}: "), param_hint=option) from None


def finite(value: float | None) -> float | None:
    """Typer callback: a number option must be finite (``--rate nan`` names ``--rate``)."""
    if value is not None and not math.isfinite(value):
        raise typer.BadParameter(f"must be a finite number, got {value}.")
    return value


def write_json(path: Path | None, data) -> None:
    """``--json PATH``: write ``data``; ``-`` prints it to stdout."""
    if path is None:
        return
    text = json.dumps(data, indent=1, default=_jsonable)
    if str(path) == "-":
        sys.stdout.write(text + "\n")
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, path)


def _jsonable(v):
    if hasattr(v, "tolist"):
        return v.tolist()
    if isinstance(v, Path):
        return str(v)
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")
