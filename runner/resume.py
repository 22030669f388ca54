"""What `--resume RUN_DIR` may and may not change. A resumed run continues what its config.json
recorded: it belongs to the program that wrote it (a search or a retrain), and a flag given
again must either be one that leaves the computation alone (`MAY_CHANGE_ON_RESUME`) or hold the
run's own value. Each refusal is one line naming the flag, the run's value and the new one."""

from __future__ import annotations

import json
from collections.abc import Iterable

# flags a resumed run takes from the command line: more epochs (the cosine schedule is
# stretched to them), where it runs and where its data and other runs are, how it logs, which
# final test passes a retrain makes
MAY_CHANGE_ON_RESUME = ("epochs", "device", "dist_timeout", "data", "download", "runs_dir",
                        "report_freq", "wandb", "wandb_project", "wandb_mode", "final_eval",
                        "trials", "time_budget_s")  # the last two extend a black-box search

# the program that writes a run directory, told by a key only its config.json records
PROGRAM_MARKERS = {"train_search.py": "candidates", "train.py": "genotype"}


class ResumeError(ValueError):
    """A --resume that would continue a run other than the one recorded."""


def may_change_help() -> str:
    """The --help sentence on the flags a resumed run takes from the command line."""
    return ("continue the run in RUN_DIR from its last checkpoint with its saved settings; of "
            "the flags, only " + ", ".join(f"--{name}" for name in MAY_CHANGE_ON_RESUME)
            + " may change (--epochs extends the run); any other flag given must keep the "
              "run's value")


def program_of(config: dict) -> str | None:
    """The program whose run directory holds `config` (its config.json), or None."""
    for program, marker in PROGRAM_MARKERS.items():
        if marker in config:
            return program
    return None


def check_program(path, config: dict, program: str) -> None:
    """`program --resume path` only on a run directory of `program`."""
    owner = program_of(config)
    if owner is None or owner == program:
        return
    if owner == "train_search.py":
        hint = f"retrain its genotype with `python train.py --genotype {path}`"
    else:
        hint = "start a search with train_search.py --save NEW_DIR"
    raise ResumeError(f"--resume {path}: this run directory belongs to {owner}, not {program}; "
                      f"continue it with `python {owner} --resume {path}`, or {hint}")


def check_unchanged(path, config: dict, values: dict, given: Iterable[str],
                    ignored: Iterable[str] = ()) -> None:
    """Every flag in `given` (its value now in `values`) outside `MAY_CHANGE_ON_RESUME` and
    `ignored` must hold the value the run recorded."""
    changed = [(key, config[key], values[key]) for key in sorted(given)
               if key in config and key in values and key not in MAY_CHANGE_ON_RESUME
               and key not in set(ignored) and _comparable(config[key]) != _comparable(values[key])]
    if changed:
        shown = ", ".join(f"--{key} {new} (the run's: {old})" for key, old, new in changed)
        raise ResumeError(f"--resume {path}: {shown} would change what the run computes; drop "
                          f"{'it' if len(changed) == 1 else 'them'} to continue the run, or start "
                          f"a new run with --save NEW_DIR (only "
                          f"{', '.join('--' + name for name in MAY_CHANGE_ON_RESUME)} may change "
                          f"on resume)")


def _comparable(value):
    """A value as config.json holds it (tuples as lists, paths as strings)."""
    return json.loads(json.dumps(value, default=str))
