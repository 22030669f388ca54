"""A sweep's sub-runs checked before the sweep starts: each planned command line goes through
its program's parser and input checks, so a bad value (in --search_args, --train_args, a
multiplier set, the epochs) fails now in one line naming the sub-run, not hours later when
that sub-run's turn comes."""

from __future__ import annotations

import contextlib
import importlib
import io


class SubRunInputError(ValueError):
    """A planned sub-run whose program would refuse its flags."""


SWEEP_FLAGS = "--search_*/--retrain_*, --search_args, --train_args, --multiplier_sets"


def check_runs(runs, module_of, flags: str = SWEEP_FLAGS) -> None:
    """Parse and check every planned run's argv (`module_of(run)`: its program's module name,
    which has `parse_args(argv)` and `check_inputs(args)`); an error names the run and the
    `flags` of the caller that make its argv."""
    for run in runs:
        program = importlib.import_module(module_of(run))
        refused = io.StringIO()
        try:
            with contextlib.redirect_stderr(refused):
                args = program.parse_args(run.argv)
        except SystemExit:
            lines = refused.getvalue().strip().splitlines() or ["its flags are refused"]
            problem = lines[-1].split(": error: ", 1)[-1]  # argparse's '<prog>: error: ...'
            raise SubRunInputError(_message(run, module_of(run), problem, flags)) from None
        try:
            program.check_inputs(args)
        except ValueError as error:
            raise SubRunInputError(_message(run, module_of(run), str(error), flags)) from None


def _message(run, module: str, problem: str, flags: str) -> str:
    return f"sub-run {run.name} ({module}.py): {problem}; fix the flag that sets it ({flags})"
