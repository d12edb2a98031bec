"""The ``scoregrad`` command. Each application is a command group (or a command) of its own.

Sub-commands live beside the code they drive: every module in ``CommandGroup.lazy`` below exposes
``register(app: typer.Typer)``, which adds its command or group. They are imported only when
they run (or show their own ``--help``), so ``scoregrad --help`` and ``scoregrad rl --help``
answer without importing torch, gymnasium or scikit-learn. A command whose optional dependency
is missing says which extra to install.

Errors: every ``ScoregradError`` and bad option is one paragraph on stderr and a non-zero exit;
``--debug`` shows the traceback instead (see ``scoregrad.app.cli``).
"""

from __future__ import annotations

import typer

from .app.cli import OWNS_PROCESS, CommandGroup, set_debug


class ScoregradCommands(CommandGroup):
    lazy = {
        "demo": (
            "scoregrad.diagnostics.cli",
            "Compare the score-function estimator's variance reduction on a problem with exact answers.",
        ),
        "compare": (
            "scoregrad.diagnostics.cli",
            "Compare gradient estimators on a problem with an exact gradient.",
        ),
        "rl": ("scoregrad.rl.cli", "Policy gradients (REINFORCE) on Gymnasium environments."),
        "vi": (
            "scoregrad.vi.cli",
            "Black-box variational inference: fit models by score-function (and other) ELBO gradients.",
        ),
        "greeks": (
            "scoregrad.finance.cli",
            "Monte Carlo price and Greeks (LR / pathwise / mixed) with SEs and z-scores.",
        ),
    }


app = typer.Typer(
    help="Monte Carlo gradient estimation around the score-function estimator.",
    no_args_is_help=True,
    cls=ScoregradCommands,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    ctx: typer.Context,
    debug: bool = typer.Option(False, "--debug", help="Show the traceback of an error."),
) -> None:
    """scoregrad: gradients of expectations of black-box functions, with honest error bars.

    Runs, resume and the common options: see docs/runs.md.
    """
    set_debug(ctx, debug)


def main() -> None:  # pragma: no cover - console entry point
    app(obj={OWNS_PROCESS: True})


if __name__ == "__main__":  # pragma: no cover
    main()
