"""Finding and reading run directories below a root: search runs (`genotype.json`) and retrain
runs (`results.json`), each with its config and per-epoch history, and the genotype file a
retrain was trained from (a search's record, or a baseline file written by the sweep)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import genotypes
from reporting.retrain_report import RESULTS_FILE
from runner.rundir import CONFIG_FILE, HISTORY_FILE


@dataclass
class Run:
    """One finished run directory: `kind` is 'search' or 'train'; `record` is its
    genotype.json (search) or results.json (train)."""

    path: Path
    kind: str
    record: dict
    config: dict = field(default_factory=dict)
    history: list = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name


def read_json(path: Path, default=None):
    """The parsed JSON file, or `default` when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return default


def read_run(path: Path) -> Run | None:
    """A finished run in `path`, or None (no config.json, or neither result file)."""
    config = read_json(path / CONFIG_FILE)
    if not isinstance(config, dict):
        return None
    for kind, marker in (("train", RESULTS_FILE), ("search", genotypes.GENOTYPE_FILE)):
        record = read_json(path / marker)
        if isinstance(record, dict) and "genotype" in record:
            history = read_json(path / HISTORY_FILE, default=[])
            return Run(path=path, kind=kind, record=record, config=config,
                       history=history if isinstance(history, list) else [])
    return None


def find_runs(root: str | Path) -> list[Run]:
    """Every finished search or retrain run at or below `root` (symbolic links followed, so a
    directory of links to runs works), in path order."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a directory")
    found = [Path(top) for top, _, files in os.walk(root, followlinks=True) if CONFIG_FILE in files]
    candidates = [root, *sorted(found)]
    runs = [read_run(path.resolve()) for path in dict.fromkeys(candidates)]
    return [run for run in runs if run is not None]


def locate_source(source: str | None, run_path: Path) -> Path | None:
    """The genotype file a retrain names as its source: as written, or (for a sweep directory
    that was moved) the same last two path parts next to the run."""
    if not source or source in genotypes.PUBLISHED:
        return None
    path = Path(source)
    if path.is_dir():
        path = path / genotypes.GENOTYPE_FILE
    for candidate in (path, run_path.parent.joinpath(*path.parts[-2:])):
        if candidate.is_file():
            return candidate
    return None


def source_record(run: Run) -> dict:
    """The metadata of a retrain's genotype source file ({} for a published name or a missing
    file); a search's genotype.json carries 'settings', a sweep baseline file 'baseline'."""
    path = locate_source(run.record.get("genotype_source"), run.path)
    record = read_json(path, default={}) if path else {}
    return {**record, "path": str(path)} if path else {}
