"""The errors a run reports in one line, the project's exit statuses, and the one path from an
error to (one-line message, exit status) that every command line uses (`exit_status`).

Exit statuses: 0 done; 1 done but failed a check (an STL spec violated under --stl_strict or
--strict, a sweep's sub-run failed); 2 bad input (a flag, file, genotype, spec, dataset);
3 a non-finite loss; 4 another rank of a torchrun job failed; 5 a run file could not be written;
130 interrupted (Ctrl-C; the last checkpoint is kept). Set AXDARTS_DEBUG=1 to get the traceback
of an error reported in one line.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_NON_FINITE = 3
EXIT_PEER_FAILED = 4
EXIT_WRITE_FAILED = 5
EXIT_INTERRUPTED = 130


class NonFiniteLossError(ValueError):
    """A NaN or infinite loss; the run stops and keeps its last good checkpoint."""


class GenotypeError(ValueError):
    """A genotype that cannot be parsed, validated or found."""


class RunDirError(ValueError):
    """A run directory that cannot be created, reused or resumed."""


class RunWriteError(Exception):
    """A run file that could not be written (a full disk): the previous version is intact."""


def check_finite(value, what: str):
    """`value` (a tensor) itself; a NonFiniteLossError when any element is NaN or infinite."""
    if not value.isfinite().all():
        raise NonFiniteLossError(
            f"{what} is {value.item() if value.numel() == 1 else 'non-finite'}; stopping with the "
            f"last good checkpoint kept (lower --learning_rate / --arch_learning_rate, or check "
            f"--energy_weight)")
    return value


@dataclass(frozen=True)
class OneLineError:
    """Errors of `types` end a command with `label: <message>` on stderr and `status`; `applies`
    (when given) says at the time of the error whether this entry is in force."""

    types: tuple[type[BaseException], ...]
    status: int
    label: str = "error"
    message: Callable[[BaseException], str] = str
    applies: Callable[[], bool] | None = None

    def matches(self, error: BaseException) -> bool:
        return isinstance(error, self.types) and (self.applies is None or self.applies())


# the project's input and run errors (first match wins); a program adds its own in front
ONE_LINE_ERRORS = (OneLineError((NonFiniteLossError,), EXIT_NON_FINITE),
                   OneLineError((RunWriteError,), EXIT_WRITE_FAILED),
                   OneLineError((ValueError, FileNotFoundError), EXIT_BAD_INPUT))


def describe(error: BaseException,
             kinds: tuple[OneLineError, ...] = ONE_LINE_ERRORS) -> tuple[str, str, int] | None:
    """(label, message, exit status) of an error reported in one line; None for any other
    error (a bug, whose traceback is wanted)."""
    for kind in kinds:
        if kind.matches(error):
            return kind.label, kind.message(error), kind.status
    return None


def exit_status(main: Callable[[], int | None],
                kinds: tuple[OneLineError, ...] = ONE_LINE_ERRORS) -> int:
    """Run `main` and return its exit status (None counts as 0); an error of `kinds` is printed
    as one line and returns its status; any other error propagates."""
    try:
        status = main()
    except Exception as error:
        described = describe(error, kinds)
        if described is None:
            raise
        label, message, status = described
        print(f"{label}: {message}", file=sys.stderr)
        if os.environ.get("AXDARTS_DEBUG"):
            raise
        return status
    return EXIT_OK if status is None else status
