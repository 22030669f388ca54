"""Retrain a genotype from scratch, evaluate it and check the run against an STL spec:
`python train.py --genotype best`.

The network's convolutions named `op@multiplier` train on that multiplier (low-rank surrogate)
and are evaluated with the multiplier's real truth table and, for comparison, with exact 8-bit
arithmetic, in float32, and as the deployed int8 network (deploy/: BatchNorm folded, calibrated
8-bit activations, integer accumulation). Per epoch: losses, accuracies, learning rate and
energy per image go to history.json and TensorBoard; at the end, results.json holds accuracy,
cost and the STL verdict.

Under torchrun (`torchrun --nproc_per_node N train.py ...`) training is data-parallel (DDP):
--batch_size is the global batch, the test set is sharded and its counts summed, and rank 0
alone writes the run directory (see runner/distributed.py).
"""

from __future__ import annotations

import argparse
import sys
from contextlib import nullcontext

import torch
import torch.nn as nn

import data
import energy_estimator
import experiment
import genotypes
import preflight
from approx import Emulation
from approx.settings import FLOAT_MODE
from defaults import TRAIN_DEFAULTS
from model import build_network
from reporting import retrain_report
from runner import distributed, skeleton
from runner.errors import EXIT_FAILED, EXIT_OK, check_finite
from runner.training import AverageMeter, accuracy, progress
from runner.weight_optimizers import default_learning_rate, weight_optimizer
from search import runs


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=experiment.HelpFormatter,
                                     epilog=experiment.defaults_epilog(TRAIN_DEFAULTS))
    parser.add_argument("--genotype", default="best",
                        help="best | a published name | a genotype JSON file | a run directory")
    experiment.add_common_args(parser)
    train = parser.add_argument_group("training (DARTS flags)")
    experiment.add_training_args(train, "network")
    train.add_argument("--auxiliary", action=argparse.BooleanOptionalAction, default=None,
                       help="auxiliary head")
    train.add_argument("--auxiliary_weight", type=float, default=0.4, help="auxiliary loss weight")
    train.add_argument("--drop_path_prob", type=float, default=None, help="drop path probability")
    train.add_argument("--float_warmup_epochs", default=None, metavar="N",
                       help="the first N epochs (a count, or a share of --epochs such as "
                            "'33%%') compute every approximate conv in float32 (a training "
                            "step about 1.8x faster on the shapes defaults); the multipliers' "
                            "emulation then trains the weights, as "
                            "quantisation-aware training starts from float weights (0: "
                            "emulated from the start)")
    cost = parser.add_argument_group("cost and verification")
    experiment.add_cost_args(cost)
    cost.add_argument("--stl", default=None,
                      help="STL spec over history.json signals (default: "
                           "'G(energy_uj <= B) & F(test_acc >= 0.8)', B = the search's budget, "
                           "or 'F(test_acc >= 0.8)' without one)")
    cost.add_argument("--stl_normalize", action="store_true",
                      help="divide each predicate's margin by its threshold")
    cost.add_argument("--stl_strict", action="store_true",
                      help="exit with status 1 when the spec is violated")
    cost.add_argument("--final_eval", default=retrain_report.FINAL_EVAL_ALL,
                      choices=retrain_report.FINAL_EVALS,
                      help="final test passes: all; deployment: the real tables and the "
                           "deployed int8 network (exact int8 and float32 skipped); tables: "
                           "the real tables only (benchmarks that compare many retrains)")
    args = experiment.parse(parser, argv, TRAIN_DEFAULTS)
    args.learning_rate = default_learning_rate(args.learning_rate, args.weight_optimizer)
    return args


def build(args, dataset: data.Dataset, genotype, device, emulation: Emulation):
    model = build_network(genotype, args.init_channels, dataset.num_classes, args.layers,
                          args.auxiliary, emulation=emulation).to(device)
    optimizer = weight_optimizer(args.weight_optimizer, model.parameters(), args.learning_rate,
                                 args.momentum, args.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.epochs)
    common = dict(mean=dataset.mean, std=dataset.std, device=device, seed=args.seed)
    loaders = {
        "train": data.BatchLoader(dataset.train, train=True,
                                  cutout=args.cutout_length if args.cutout else 0,
                                  crop_padding=args.crop_padding,
                                  **distributed.shard(args.batch_size), **common),
        "test": data.BatchLoader(dataset.test, train=False,
                                 **distributed.shard(2 * args.batch_size), **common),
    }
    return model, optimizer, scheduler, loaders


def train_epoch(model, loader, optimizer, args, epoch) -> dict:
    """One epoch through `model` (the network or its DDP wrapper); metrics over all ranks."""
    model.train()
    loss_meter, acc_meter = AverageMeter(), AverageMeter()
    criterion = nn.CrossEntropyLoss()
    loader.set_epoch(epoch)
    for x, y in progress(loader, len(loader), f"train epoch {epoch}", show=distributed.is_main()):
        optimizer.zero_grad(set_to_none=True)
        output = model(x)
        logits, logits_aux = output if isinstance(output, tuple) else (output, None)
        loss = criterion(logits, y)
        if logits_aux is not None:
            loss = loss + args.auxiliary_weight * criterion(logits_aux, y)
        check_finite(distributed.mean_tensor(loss.detach()), "training loss")
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        optimizer.step()
        loss_meter.update(loss.item(), len(y))
        acc_meter.update(accuracy(logits, y), len(y))
    distributed.sum_meters({"loss": loss_meter, "acc": acc_meter})
    return {"train_loss": loss_meter.avg, "train_acc": acc_meter.avg}


def resolve_genotype(args, saved_config: dict):
    """The genotype to train and a record of where it came from; a resumed run keeps the one
    saved in its config (its --genotype, e.g. 'best', may resolve differently by now)."""
    if saved_config:
        return (genotypes.from_dict(saved_config["genotype"]),
                {"source": saved_config.get("genotype_source"), "reason": "resumed run"})
    if isinstance(args.genotype, dict):  # from --config: a run's config.json holds the cell
        return (genotypes.from_dict(args.genotype, source=f"--config {args.config}"),
                {"source": args.config, "reason": "the genotype of --config"})
    return runs.resolve(args.genotype, args.runs_dir)


def float_warmup_epochs(args) -> int:
    """--float_warmup_epochs as a count of epochs."""
    return experiment.epoch_count("--float_warmup_epochs", args.float_warmup_epochs,
                                  args.epochs, example="33%")


def check_inputs(args, genotype=None) -> None:
    """The retrain's numbers checked before its run directory exists (sweep.py checks its
    planned retrains with it too, before their genotypes exist)."""
    preflight.check_epochs(args.epochs)
    preflight.check_float_warmup(args.float_warmup_epochs, float_warmup_epochs(args),
                                 args.epochs)
    preflight.check_retrain_args(args, genotype)


def check_resumed_genotype(args, spec, saved_config: dict) -> None:
    """A --genotype given again on --resume must name the run's own genotype (`best` stands for
    the run's recorded choice)."""
    given = "genotype" in getattr(args, "given_flags", ())
    if not given or spec == "best" or isinstance(spec, dict):
        return
    if genotypes.to_dict(runs.resolve(spec, args.runs_dir)[0]) != saved_config["genotype"]:
        raise ValueError(f"--resume {args.resume}: --genotype {spec} is not the run's genotype "
                         f"(from {saved_config.get('genotype_source')}); drop --genotype to "
                         f"continue the run, or retrain {spec} with --save NEW_DIR")


def run_training(args) -> int:
    spec = args.genotype
    saved_config = experiment.restore_saved_config(args, "train.py") if args.resume else {}
    if saved_config:
        check_resumed_genotype(args, spec, saved_config)
    genotype, genotype_record = resolve_genotype(args, saved_config)
    check_inputs(args, genotype)
    # a count from here on: the run records it, and a resumed run keeps it whatever its --epochs
    args.float_warmup_epochs = float_warmup_epochs(args)
    emulation = Emulation(args.lut_dir)  # full rank; the final evaluation switches to exact
    preflight.check_multiplier_power(f"--genotype {args.genotype}",
                                     preflight.genotype_multipliers(genotype), emulation)
    stl_spec = args.stl or retrain_report.default_spec(genotype_record)
    retrain_report.check_spec(stl_spec)
    device = skeleton.setup(args)
    dataset = experiment.load_data(args)
    return skeleton.run_program(Retrain(args, dataset, genotype, genotype_record, stl_spec,
                                        device, emulation), args)


class Retrain(skeleton.Program):
    """The retrain as the run skeleton drives it (runner/skeleton.py)."""

    kind = "train"

    def __init__(self, args, dataset, genotype, genotype_record: dict, stl_spec: str, device,
                 emulation: Emulation):
        self.args, self.dataset, self.device, self.stl_spec = args, dataset, device, stl_spec
        self.genotype, self.genotype_record = genotype, genotype_record
        energy_table = energy_estimator.load_energy_table(args.energy_table)
        model, optimizer, scheduler, self.loaders = build(args, dataset, genotype, device,
                                                          emulation)
        self.cost = energy_estimator.profile(model, (3, *dataset.train.images.shape[-2:]),
                                             energy_table)
        self.model = model
        self.components = {"model": model, "optimizer": optimizer, "scheduler": scheduler}

    def replica(self):
        return distributed.data_parallel(self.model, self.device)

    def config_additions(self) -> dict:
        return {"genotype": genotypes.to_dict(self.genotype), "stl": self.stl_spec,
                "genotype_source": self.genotype_record.get("source")}

    def log_start(self, run, config: dict) -> None:
        retrain_report.log_start(run, self.genotype, self.genotype_record, self.cost,
                                 self.dataset, float_warmup_epochs(self.args))

    def train_epoch(self, run, replica, epoch: int, lr: float, step: int) -> tuple[dict, int]:
        self.model.drop_path_prob = self.args.drop_path_prob * epoch / self.args.epochs
        in_float = epoch < float_warmup_epochs(self.args)
        with self.model.emulating(mode=FLOAT_MODE) if in_float else nullcontext():
            metrics = train_epoch(replica, self.loaders["train"], self.components["optimizer"],
                                  self.args, epoch)
        return metrics, step

    def evaluate_epoch(self) -> dict:
        return {**skeleton.evaluate(self.model, self.loaders["test"], "test"),
                **retrain_report.energy_signals(self.cost)}

    def log_epoch(self, run, record: dict) -> None:
        retrain_report.log_epoch(run, record)

    def finish(self, run) -> int:
        results = retrain_report.finish(run, self.args, self.model, self.loaders["test"],
                                        self.cost, self.stl_spec, self.genotype,
                                        self.genotype_record, self.dataset)
        return EXIT_FAILED if self.args.stl_strict and not results["stl"]["satisfied"] \
            else EXIT_OK


def main(argv=None) -> int:
    return skeleton.run_guarded(lambda: run_training(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
