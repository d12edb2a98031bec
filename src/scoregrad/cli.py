"""The ``scoregrad`` command. Each application registers its own commands here.

Sub-commands live beside the code they drive: every module listed in ``_APPLICATIONS`` exposes
``register(app: typer.Typer)``, which adds its commands or groups (``scoregrad rl ...``,
``scoregrad vi ...``, ``scoregrad greeks``, ``scoregrad compare``). A missing optional dependency
only hides that application's commands.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    help="Monte Carlo gradient estimation around the score-function estimator.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _root() -> None:
    """scoregrad: gradients of expectations of black-box functions, with honest error bars."""


_APPLICATIONS = (
    "scoregrad.diagnostics.demo",
    "scoregrad.diagnostics.cli",
    "scoregrad.rl.cli",
    "scoregrad.vi.cli",
    "scoregrad.finance.cli",
)


def _register_applications() -> None:
    for name in _APPLICATIONS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name is not None and (
                name.startswith(e.name) or e.name in ("gymnasium", "sklearn")
            ):
                continue  # that application is not installed, or needs an optional extra
            raise
        module.register(app)


_register_applications()


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
