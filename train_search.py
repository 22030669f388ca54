"""Energy-aware DARTS search: `python train_search.py --epochs 50`.

Trains the supernet's weights on one half of the training set and its architecture weights
(alphas) on the other half against `CE_val + energy term`, logs everything to the run directory
and TensorBoard, and writes the derived genotype to `<run>/genotype.json`, where
`train.py --genotype best` finds it. `--space resnet` searches a ResNet backbone (stages,
blocks per stage, width and a multiplier per conv) instead of DARTS cells (backbones/).

Under torchrun (`torchrun --nproc_per_node N train_search.py ...`) the search is data-parallel:
--batch_size is the global batch, weights are averaged by DDP, alpha gradients by the
architect, and rank 0 alone writes the run directory (see runner/distributed.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import torch

import data
import energy_estimator
import experiment
import genotypes
import preflight
from approx import Emulation
from approx.surrogate import SEARCH_RANK_POLICY
from architect import Architect, EnergySettings
from backbones import cli as backbone_cli
from blackbox import cli as blackbox_cli
from blackbox import runner as blackbox_runner
from defaults import SEARCH_DEFAULTS
from reporting import drawings, search_report
from runner import distributed, skeleton
from runner.errors import EXIT_OK
from runner.weight_optimizers import default_learning_rate, weight_optimizer
from search import bilevel, cell_cli
from search.cell_cli import split_names
from search.proxy import ProxyData, ProxyRecipe, proxy_accuracy
from search.sampling import MULTIPLIER_SAMPLINGS
from search.space import FLOAT


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=experiment.HelpFormatter,
                                     epilog=experiment.defaults_epilog(SEARCH_DEFAULTS))
    experiment.add_common_args(parser)
    train = parser.add_argument_group("weights (DARTS flags)")
    experiment.add_training_args(train, "supernet", epochs=50, cutout=False)
    train.add_argument("--learning_rate_min", type=float, default=None,
                       help="final cosine lr (default: per dataset and --weight_optimizer; "
                            "shapes: 1e-3 for SGD, 3e-5 for AdamW, a hundredth of each one's "
                            "default --learning_rate)")
    train.add_argument("--lr_warmup_epochs", type=float, default=None,
                       help="linear warm-up of the weights' learning rate over this many "
                            "epochs' steps (0: none; docs/supernet_stability.md)")
    train.add_argument("--train_portion", type=float, default=0.5,
                       help="share of the training set for weights (the rest trains alphas)")
    train.add_argument("--val_images", type=int, default=None,
                       help="evaluate the supernet each epoch on this many images of the "
                            "alphas' part (default: all of it)")
    arch = parser.add_argument_group("architecture")
    arch.add_argument("--space", default="darts", choices=("darts", "resnet"),
                      help="search space: DARTS cells, or a ResNet backbone (stages, blocks, "
                           "width and a multiplier per conv; see the backbone flags)")
    arch.add_argument("--unrolled", action="store_true", help="second-order (unrolled) step")
    arch.add_argument("--arch_learning_rate", type=float, default=None,
                      help="Adam lr of the alphas")
    arch.add_argument("--arch_every", type=int, default=None, metavar="K",
                      help="an architecture step before every K-th weight step only (1: every "
                           "step, as DARTS; shapes: 2, with a doubled alpha lr); K > 1 cuts a "
                           "search epoch's alpha-step time by (K-1)/K (docs/search_profile.md)")
    arch.add_argument("--arch_weight_decay", type=float, default=1e-3, help="alpha weight decay")
    arch.add_argument("--primitives", default=None,
                      help="comma-separated candidate ops (default: per dataset; the 8 DARTS "
                           "ops are " + ",".join(genotypes.PRIMITIVES) + ")")
    arch.add_argument("--multipliers", default=None,
                      help="comma-separated multiplier set of the conv ops: built-in names, "
                           "EvoApprox names with --lut_dir, a .bin path, 'float' (a float32 "
                           "conv); the exact 8-bit multiplier of the set's kind ('exact', or "
                           "'exact_s' for signed tables) is always included; '' = float "
                           "convs only")
    arch.add_argument("--fixed_multiplier", default=None,
                      help="multiplier of the convs outside the cells' searched ops (stem, "
                           "1x1 preprocess convs, FactorizedReduce, classifier): the supernet "
                           "emulates them on it and the energy prices them as int8 (default: "
                           "the exact multiplier of the set's kind, 'exact' or 'exact_s'); "
                           "'float' keeps them float32 (the searches before it existed); "
                           "'stem=M1,preprocess=M2,reduce_skip=M3,classifier=M4' puts each "
                           "group on its own; 'search' (or 'stem=search,...' per group) lets "
                           "the search choose the stem's, preprocess convs' and classifier's "
                           "multipliers from --multipliers too (FactorizedReduces on exact)")
    arch.add_argument("--multiplier_search", default="factorised",
                      choices=("factorised", "flat"),
                      help="factorised: per edge, alphas over the ops and, per conv op, a "
                           "distribution over the multipliers; flat: each multiplier adds "
                           "'<conv op>@<multiplier>' candidates beside the float ops")
    arch.add_argument("--multiplier_granularity", default="edge",
                      choices=("edge", "cell", "network"),
                      help="factorised: one multiplier distribution per edge and conv op, per "
                           "cell type and conv op, or one for the whole network")
    arch.add_argument("--multiplier_sampling", default="mixture", choices=MULTIPLIER_SAMPLINGS,
                      help="factorised: how a forward sees a conv op's multipliers: 'gumbel' "
                           "draws one per conv op and step (straight-through Gumbel-softmax, "
                           "as the derived cell runs one), 'mixture' averages all of them")
    arch.add_argument("--max_parameter_free", type=int, default=2, metavar="N",
                      help="the derived normal cell keeps at most N skip/pool ops (P-DARTS's "
                           "guard against skip collapse; -1 = no cap)")
    arch.add_argument("--warmup_epochs", default=None,
                      help="epochs that train the weights only before the alphas move, as a "
                           "count or a share of --epochs ('40%%'); PC-DARTS freezes the "
                           "architecture for its first 15 of 50 epochs")
    arch.add_argument("--float_warmup", action=argparse.BooleanOptionalAction, default=None,
                      help="the warm-up epochs compute every conv in float32 (1.7x faster per "
                           "step); the emulated multipliers take over when the alphas start "
                           "moving, as quantisation-aware training starts from float weights")
    arch.add_argument("--approx_rank", default=SEARCH_RANK_POLICY, metavar="R",
                      help="search-time surrogate of multipliers whose error is not exactly "
                           "low-rank (Mitchell, EvoApproxLib tables): 'auto' (default) runs "
                           "each at the smallest rank whose error on a reference conv is at "
                           "most 10%% of the multiplier's own effect (mul8u_197B: 24 terms, "
                           "mul8u_0AB: 48); an integer R caps it at R terms (faster, coarser: "
                           "the log states its error); -1 = each one's default rank. Exactly "
                           "low-rank designs (trunc, bam, drum, kulkarni) always keep their "
                           "true rank. The retrain's final evaluation uses the exact tables")
    arch.add_argument("--partial_channels", type=int, default=1, metavar="K",
                      help="PC-DARTS: mixed ops see 1/K of the channels (with edge "
                           "normalisation); 1 = plain DARTS")
    energy = parser.add_argument_group("energy")
    experiment.add_cost_args(energy)
    energy.add_argument("--energy_weight", type=float, default=0.5,
                        help="lambda: weight of the normalised energy term")
    energy.add_argument("--energy_loss", default="linear", choices=("linear", "log", "hinge"),
                        help="form of the energy term")
    energy.add_argument("--energy_budget", type=float, default=None,
                        help="energy budget B per image in microjoules (hinge, controller)")
    energy.add_argument("--budget_control", default=None, choices=("pi",),
                        help="adapt lambda each step so the genotype settles under the budget")
    energy.add_argument("--energy_objective", default="total",
                        choices=tuple(energy_estimator.search_space.ENERGY_OBJECTIVES),
                        help="energy the search optimises and budgets: arithmetic + data "
                             "movement, arithmetic only, or the multiplications only")
    energy.add_argument("--energy_channels", type=int, default=None,
                        help="C of the network the energy is costed on (the retrain's; "
                             "default: train.py's --init_channels for the dataset)")
    energy.add_argument("--energy_layers", type=int, default=None,
                        help="cells of the network the energy is costed on (default: "
                             "train.py's --layers for the dataset)")
    energy.add_argument("--energy_image_size", type=int, default=None,
                        help="image side the energy is costed at (default: train.py's "
                             "--image_size for the dataset)")
    ranking = parser.add_argument_group("ranking (--genotype best)")
    ranking.add_argument("--rank_proxy_epochs", type=int, default=None, metavar="N",
                         help="after the search, train the derived genotype from scratch for "
                              "N epochs by the short proxy (search/proxy.py: the search's "
                              "network size, weights split and validation images) and record "
                              "its accuracy as proxy_acc, which `train.py --genotype best` "
                              "ranks by; 0: no proxy (default: 10 on shapes, 0 on other "
                              "data; docs/search_quality.md)")
    ranking.add_argument("--rank_proxy_batch_size", type=int, default=None, metavar="B",
                         help="batch size of the ranking proxy (default: 32 on shapes, where "
                              "its 4x more steps ranked 16 genotypes as the 15-epoch retrain "
                              "does at Kendall tau 0.53 against 0.41 at the search's 128; the "
                              "search's --batch_size on other data)")
    backbone_cli.add_search_args(parser)
    blackbox_cli.add_args(parser)
    typed = experiment.given_flags(parser, argv)  # on the command line, not from --config
    args = experiment.parse(parser, argv, SEARCH_DEFAULTS)
    resolve_weight_optimizer(args)
    warmup_epochs(args.warmup_epochs, args.epochs)  # a bad value fails now
    if args.lr_warmup_epochs < 0:
        raise ValueError(f"--lr_warmup_epochs {args.lr_warmup_epochs:g} must not be negative "
                         f"(0: no learning-rate warm-up)")
    check_space_flags(args.space, typed)
    preflight.check_at_least("--rank_proxy_epochs", args.rank_proxy_epochs, 0,
                             "epochs of the ranking proxy (0: none)")
    if args.rank_proxy_batch_size is not None:
        preflight.check_at_least("--rank_proxy_batch_size", args.rank_proxy_batch_size, 1,
                                 "images per step of the ranking proxy")
    return args


def resolve_weight_optimizer(args) -> None:
    """The weights' optimiser and its learning rates: a second-order search trains by SGD
    unless told otherwise (DARTS's virtual step is an SGD step; another optimiser is refused),
    and a per-optimiser default learning rate (defaults.py) becomes the chosen one's."""
    if args.unrolled and "weight_optimizer" not in args.given_flags:
        args.weight_optimizer = "sgd"
    if args.unrolled and args.weight_optimizer != "sgd":
        raise ValueError(f"--unrolled's virtual step is DARTS's SGD step: give "
                         f"--weight_optimizer sgd (not {args.weight_optimizer}) to search "
                         f"second order")
    args.learning_rate = default_learning_rate(args.learning_rate, args.weight_optimizer)
    args.learning_rate_min = default_learning_rate(args.learning_rate_min, args.weight_optimizer)


# the wiring of each --space: FLAGS, check(args, emulation), build_supernet(args, dataset,
# energy_table, emulation)
SPACES = {"darts": cell_cli, "resnet": backbone_cli}


def check_space_flags(chosen: str, typed) -> None:
    """A flag typed on the command line for the space not `chosen` stops the run (one line).
    (A config file holds every flag of its run, so only the command line is checked.)"""
    for space, wiring in SPACES.items():
        stray = [f"--{flag}" for flag in wiring.FLAGS if flag in typed]
        if space != chosen and stray:
            raise ValueError(f"{', '.join(stray)} apply to --space {space} only, not to "
                             f"--space {chosen}: drop them or search --space {space}")


def warmup_epochs(value, epochs: int) -> int:
    """--warmup_epochs as a count: 'N' epochs, or 'P%' of the search's epochs."""
    return experiment.epoch_count("--warmup_epochs", value, epochs, example="40%")


def epoch_settings(args, epoch: int, steps_per_epoch: int) -> bilevel.EpochSettings:
    """How search epoch `epoch` (from 0) steps: its order, clip, warm-ups."""
    warming_up = epoch < warmup_epochs(args.warmup_epochs, args.epochs)
    return bilevel.EpochSettings(
        args.unrolled, args.grad_clip, warming_up=warming_up,
        lr_warmup_steps=round(args.lr_warmup_epochs * steps_per_epoch),
        arch_every=args.arch_every, float_convs=warming_up and bool(args.float_warmup))


def emulation_settings(args) -> Emulation:
    """The search's emulation: --lut_dir's library, the --approx_rank surrogate (-1: none)."""
    return Emulation.for_search(args.lut_dir, args.approx_rank)


def build(args, dataset: data.Dataset, device: torch.device, emulation: Emulation):
    """Candidate set, supernet, optimisers and loaders (all inputs checked before any write)."""
    table = energy_estimator.load_energy_table(args.energy_table)
    candidates, model = SPACES[args.space].build_supernet(args, dataset, table, emulation)
    model = model.to(device)
    w_optimizer = weight_optimizer(args.weight_optimizer, model.weights(), args.learning_rate,
                                   args.momentum, args.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(w_optimizer, args.epochs,
                                                           eta_min=args.learning_rate_min)
    energy = EnergySettings(args.energy_loss, args.energy_budget, args.budget_control)
    architect = Architect(model, args.energy_weight, energy,
                          arch_learning_rate=args.arch_learning_rate,
                          arch_weight_decay=args.arch_weight_decay, momentum=args.momentum,
                          weight_decay=args.weight_decay,
                          reduce_gradients=distributed.average_gradients)
    weights_part, alphas_part = data.search_split(dataset.train, args.train_portion,
                                                  args.data_seed)
    loader = dict(mean=dataset.mean, std=dataset.std, device=device, seed=args.seed)
    augment = dict(cutout=args.cutout_length if args.cutout else 0,
                   crop_padding=args.crop_padding)
    batch, val_batch = distributed.shard(args.batch_size), distributed.shard(2 * args.batch_size)
    loaders = {
        "train": data.BatchLoader(weights_part, train=True, **augment, **batch, **loader),
        "arch": data.BatchLoader(alphas_part, train=True, **augment, **batch,
                                 **{**loader, "seed": args.seed + 1}),
        "val": data.BatchLoader(alphas_part.subset(slice(0, args.val_images)), train=False,
                                **val_batch, **loader),
        "test": data.BatchLoader(dataset.test, train=False, **val_batch, **loader),
    }
    return candidates, model, w_optimizer, scheduler, architect, loaders


def check_inputs(args) -> Emulation:
    """Every input of the search checked before its run directory exists (sweep.py checks
    its planned searches with it too); the search's emulation."""
    preflight.check_epochs(args.epochs)
    preflight.check_search_args(args, warmup_epochs(args.warmup_epochs, args.epochs))
    emulation = emulation_settings(args)
    preflight.check_multiplier_power("--multipliers", [m for m in split_names(args.multipliers)
                                                       if m != FLOAT], emulation)
    SPACES[args.space].check(args, emulation)  # the space's own settings, before the data
    return emulation


def prepare_in_process(argv, device: torch.device | str = "cpu"):
    """(args, build's parts) of the search `argv` would run, seeded, without a run directory:
    for benchmarks that step the default search themselves (bench/)."""
    args = parse_args(argv)
    emulation = check_inputs(args)
    skeleton.set_seed(args.seed)
    return args, build(args, experiment.load_data(args), torch.device(device), emulation)


def run_search(args) -> int:
    if args.resume and "fixed_multiplier" not in experiment.restore_saved_config(
            args, "train_search.py"):
        args.fixed_multiplier = FLOAT  # a search from before the flag: float32 fixed layers
    emulation = check_inputs(args)
    device = skeleton.setup(args)
    dataset = experiment.load_data(args)
    if args.strategy != "darts":  # a black-box search of the same space (blackbox/)
        return blackbox_runner.run(args, dataset, device, emulation)
    return skeleton.run_program(Search(args, dataset, device, emulation), args)


class Search(skeleton.Program):
    """The search as the run skeleton drives it (runner/skeleton.py)."""

    kind = "search"

    def __init__(self, args, dataset, device, emulation: Emulation):
        self.args, self.dataset, self.device, self.emulation = args, dataset, device, emulation
        candidates, model, w_optimizer, scheduler, architect, loaders = build(args, dataset,
                                                                              device, emulation)
        self.candidates, self.model, self.architect, self.loaders = (candidates, model,
                                                                     architect, loaders)
        self.components = {"model": model, "w_optimizer": w_optimizer, "scheduler": scheduler,
                           "architect": architect}
        self.figures = drawings.FigureCache()  # the epoch pictures, redrawn when they change

    def replica(self):
        return distributed.data_parallel_weights(self.model, self.device)

    def config_additions(self) -> dict:
        return {"candidates": self.candidates}

    def log_start(self, run, config: dict) -> None:
        args, model = self.args, self.model
        search_report.log_settings(run, config, model, self.dataset)
        search_report.log_surrogate(run, model.multiplier_set() or split_names(args.multipliers),
                                     self.emulation)

    def train_epoch(self, run, replica, epoch: int, lr: float, step: int) -> tuple[dict, int]:
        args = self.args
        parts = bilevel.SearchParts(self.model, replica, self.architect,
                                    self.components["w_optimizer"], self.loaders)
        return bilevel.train_epoch(
            parts, epoch, lr, step, epoch_settings(args, epoch, len(self.loaders["train"])),
            lambda at, stats: search_report.log_step(run, at, stats["train_loss"], stats))

    def evaluate_epoch(self) -> dict:
        return {**skeleton.evaluate(self.model, self.loaders["val"], "val"),
                **search_report.energy_stats(self.model)}

    def log_epoch(self, run, record: dict) -> None:
        search_report.log_epoch(run, record, self.model, self.architect, self.figures)

    def finish(self, run) -> int:
        final = held_out_accuracy(self.model, self.loaders, one_shot=not self.ranks_by_proxy())
        search_report.write_result(run, self.args, self.model, self.architect, self.candidates,
                                   final, self.dataset, score=self.rank_proxy)
        return EXIT_OK

    def ranks_by_proxy(self) -> bool:
        """Whether this search scores its genotype by the ranking proxy (`best` then ranks by
        it, so the one-shot score is not computed)."""
        return bool(self.args.rank_proxy_epochs) and not distributed.is_enabled()

    def rank_proxy(self, genotype) -> dict:
        """{'proxy_acc': ...} of `genotype` by the ranking proxy ({} without one, and under
        torchrun: only rank 0 writes, and the proxy's evaluation would wait for the others)."""
        args = self.args
        if not self.ranks_by_proxy():
            return {}
        proxy_data = ProxyData.of_search(self.dataset, args.train_portion, args.data_seed,
                                         args.val_images)
        recipe = ProxyRecipe.from_settings(args, args.rank_proxy_epochs,
                                           args.rank_proxy_batch_size)
        device = next(self.model.parameters()).device
        return {"proxy_acc": proxy_accuracy(genotype, proxy_data, recipe, device=device,
                                            emulation=self.emulation),
                "proxy": dataclasses.asdict(recipe)}


def held_out_accuracy(model, loaders, one_shot: bool = True) -> dict:
    """Accuracy on the held-out test images (seen by neither weights nor alphas) of the
    supernet and, with `one_shot`, of the derived cell (search/one_shot.py: what `best` ranks
    a search without a ranking proxy by; it cannot rank cells the proxy can, docs/
    search_quality.md, and costs ~14 s of the default search)."""
    held_out = skeleton.evaluate(model, loaders["test"], "test")
    if one_shot:
        held_out.update(model.derived_accuracy(model.genotype(), loaders, skeleton.evaluate))
    return held_out


def main(argv=None) -> int:
    return skeleton.run_guarded(lambda: run_search(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
