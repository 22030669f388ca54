"""The trained network of a retrain run directory: rebuilt from config.json, weights from
checkpoint.pt, with the run's dataset (for calibration and the check)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

import experiment
import genotypes
from approx import Emulation
from export.deps import ExportError
from model import build_network
from runner.rundir import CHECKPOINT_FILE, CONFIG_FILE


def read_config(run_dir: Path) -> dict:
    config_path = run_dir / CONFIG_FILE
    if not (run_dir / CHECKPOINT_FILE).is_file() or not config_path.is_file():
        raise ExportError(f"export: {run_dir} is not a retrain run directory (it needs "
                          f"{CONFIG_FILE} and {CHECKPOINT_FILE}); give the --save of train.py")
    config = json.loads(config_path.read_text())
    if "genotype" not in config or "init_channels" not in config:
        raise ExportError(f"export: {config_path} is not a train.py run's config (no genotype); "
                          "give a retrain run directory, not a search's")
    return config


def load_run(run_dir: Path, lut_dir: str | None = None):
    """(model in eval mode on the CPU, dataset, config) of the retrain run in `run_dir`."""
    config = read_config(run_dir)
    genotype = genotypes.from_dict(config["genotype"])
    dataset = experiment.load_data(argparse.Namespace(**{**config, "download": False}))
    emulation = Emulation(lut_dir if lut_dir is not None else config.get("lut_dir"))
    model = build_network(genotype, config["init_channels"], dataset.num_classes,
                          config["layers"], config["auxiliary"], emulation=emulation)
    state = torch.load(run_dir / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    return model.eval(), dataset, config
