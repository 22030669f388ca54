"""Optional Weights & Biases mirror of a run (`--wandb`): imported only when asked.

Each epoch record that goes to history.json is also logged to W&B (numbers only), the run's
config is its W&B config, and the final record (genotype.json or results.json) its summary.
`--wandb_mode offline` (the default) writes under <run>/wandb for a later `wandb sync`, so a
machine without network access can use it; `online` needs `wandb login`.
"""

from __future__ import annotations

import numbers


class WandbMirror:
    """Mirrors a RunDir's history into one W&B run."""

    def __init__(self, run_dir, config: dict, project: str, mode: str = "offline"):
        import wandb  # experiment.check_wandb ran at parse time

        self._run = wandb.init(project=project, dir=str(run_dir), mode=mode,
                               name=run_dir.name, config=_plain(config), resume="allow",
                               id=run_dir.name.replace("/", "-"))

    def log_epoch(self, record: dict) -> None:
        scalars = {key: value for key, value in record.items()
                   if isinstance(value, numbers.Number) and key != "epoch"}
        self._run.log(scalars, step=int(record.get("epoch", 0)))

    def summarise(self, record: dict) -> None:
        for key, value in record.items():
            if isinstance(value, numbers.Number | str):
                self._run.summary[key] = value

    def finish(self) -> None:
        self._run.finish()


def _plain(config: dict) -> dict:
    return {key: value for key, value in config.items()
            if isinstance(value, numbers.Number | str | bool | type(None))}
