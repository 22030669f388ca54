"""The optuna study of a black-box search: stored in the run directory, resumed from it,
and the budget that ends it.

Resume uses optuna's journal storage, `study.journal` in the run directory: an append-only
log of every change to the study (a candidate's parameters when it is drawn, its scores when
they are told), each line written and fsynced before optuna goes on, so a kill loses at most
the candidate being trained, and every sampler's state that matters (NSGA-II's generations
and parents, the trials TPE models) is rebuilt by replaying it. A JSON of trials replayed
into a new study would need each sampler's bookkeeping (NSGA-II keeps its parents in study
attributes) copied by hand; optuna's SQLite storage does the same as the journal but took
about 9 s to create its schema and ~1 s per candidate of commits on these machines (the
journal: ~0.2 s). A candidate cut short by a kill is marked failed on resume; since the sampler
of the next draw is seeded by the number of completed candidates (blackbox/samplers.py) and
failed ones are ignored, the same candidate is drawn again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

STUDY_FILE = "study.journal"
STUDY_NAME = "blackbox"
DIRECTIONS = ("maximize", "minimize")  # val_acc, energy_uj


def storage(run_path: Path) -> JournalStorage:
    return JournalStorage(JournalFileBackend(str(Path(run_path) / STUDY_FILE)))


def open_study(run_path: Path, resume: bool) -> optuna.Study:
    """The run's study: a new one, or on resume the stored one with the candidate it was
    training marked failed."""
    if not resume:
        if (Path(run_path) / STUDY_FILE).exists():
            raise ValueError(f"--save {run_path} already holds a black-box study ({STUDY_FILE}); "
                             f"pass --resume {run_path} or choose another --save directory")
        return optuna.create_study(storage=storage(run_path), study_name=STUDY_NAME,
                                   directions=list(DIRECTIONS))
    if not (Path(run_path) / STUDY_FILE).is_file():
        raise ValueError(f"--resume {run_path}: no {STUDY_FILE} there (the black-box search "
                         f"stopped before it began); start it again with a new --save")
    study = optuna.load_study(study_name=STUDY_NAME, storage=storage(run_path))
    fail_interrupted(study)
    return study


def fail_interrupted(study: optuna.Study) -> int:
    """Mark candidates left running by a kill as failed (a queued copy would not do: NSGA-II
    leaves a candidate whose parameters are all given out of its generations); how many."""
    running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    for trial in running:
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
    return len(running)


@dataclass(frozen=True)
class Budget:
    """A number of completed candidates, a time, or both (whichever is spent first). Time is
    the candidates' wall time (drawing, training, scoring), summed over resumed sessions; no
    candidate starts once it is spent, the one running finishes."""

    trials: int | None = None
    seconds: float | None = None

    def __post_init__(self):
        if self.trials is None and self.seconds is None:
            raise ValueError("a black-box search needs --trials or --time_budget_s")
        if (self.trials is not None and self.trials < 1) or (self.seconds is not None
                                                             and self.seconds <= 0):
            raise ValueError(f"--trials {self.trials} / --time_budget_s {self.seconds}: give a "
                             f"positive number of candidates or seconds")

    def spent(self, records: list[dict]) -> bool:
        if self.trials is not None and len(records) >= self.trials:
            return True
        return self.seconds is not None and sum(r["seconds"] for r in records) >= self.seconds

    def describe(self) -> str:
        parts = [f"{self.trials} candidates" if self.trials is not None else None,
                 f"{self.seconds:g} s" if self.seconds is not None else None]
        return " or ".join(p for p in parts if p)
