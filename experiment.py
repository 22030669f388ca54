"""Command-line plumbing of train_search.py and train.py that knows the project's data and
checks: the common flags, --config files, per-dataset defaults, a resumed run's saved settings,
and loading the dataset. The run itself (run directory, epochs, checkpoints, exit statuses) is
runner/skeleton.py's."""

from __future__ import annotations

import argparse
import copy

import data
import energy_estimator
import preflight
from runner import config_file, distributed, resume
from runner.rundir import RunDir
from runner.weight_optimizers import WEIGHT_OPTIMIZERS


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show every flag's default in --help and keep the description's line breaks."""


# keys a run's config.json records that are not settings of a new run
CONFIG_RECORD_ONLY = ("save", "resume", "candidates", "world_size", "genotype_source", "stl_spec",
                      "given_flags")


def add_training_args(group, network: str, epochs: int | None = None,
                      cutout: bool | None = None) -> None:
    """The DARTS training flags of both programs, declared once; `network` names what they
    train (the supernet, the network) and `epochs`/`cutout` are the program's defaults (None:
    per dataset)."""
    group.add_argument("--batch_size", type=int, default=None,
                       help="global batch size (under torchrun, split evenly over the ranks)")
    group.add_argument("--learning_rate", type=float, default=None,
                       help=f"initial lr of the {network}'s weights (cosine schedule)")
    group.add_argument("--weight_optimizer", default=None, choices=WEIGHT_OPTIMIZERS,
                       help=f"optimiser of the {network}'s weights: DARTS's SGD with "
                            f"--momentum, or AdamW (decoupled weight decay); the default "
                            f"learning rates are per optimiser (runner/weight_optimizers.py)")
    group.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    group.add_argument("--weight_decay", type=float, default=3e-4, help="weight decay")
    group.add_argument("--epochs", type=int, default=epochs, help="epochs")
    group.add_argument("--init_channels", type=int, default=None, help=f"{network} channels C")
    group.add_argument("--layers", type=int, default=None, help=f"{network} cells")
    group.add_argument("--grad_clip", type=float, default=5.0, help="gradient norm clip")
    group.add_argument("--cutout", action=argparse.BooleanOptionalAction, default=cutout,
                       help="cutout augmentation")
    group.add_argument("--cutout_length", type=int, default=16, help="cutout square side")
    group.add_argument("--crop_padding", type=int, default=None,
                       help="random-crop padding in pixels (default: an eighth of the image side, "
                            "DARTS's 4 on 32 px)")


def epoch_count(flag: str, value, epochs: int, example: str) -> int:
    """A number of epochs given as a count ('5') or as a share of `epochs` ('33%', rounded)."""
    text = str(value).strip()
    try:
        count = round(epochs * float(text[:-1]) / 100) if text.endswith("%") else int(text)
    except ValueError:
        raise ValueError(f"{flag} {value!r}: give a number of epochs or a share of --epochs "
                         f"such as '{example}'") from None
    if count < 0:
        raise ValueError(f"{flag} {value!r} must not be negative")
    return count


def add_cost_args(group) -> None:
    """The approximate-multiplier library and the energy constants, as both programs read
    them."""
    group.add_argument("--lut_dir", default=None, help="directory of EvoApproxLib .bin tables")
    energy_estimator.add_accelerator_argument(group)


def add_common_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data and run")
    group.add_argument("--config", default=None, metavar="FILE",
                       help="JSON or YAML file of settings (e.g. a run's config.json, to "
                            "reproduce it); flags given on the command line override it")
    group.add_argument("--dataset", default="shapes", choices=data.DATASETS,
                       help="dataset; 'shapes' is the embedded procedural set (no download)")
    group.add_argument("--data", default=None,
                       help="dataset root (default: ./data/<dataset>)")
    group.add_argument("--download", action="store_true",
                       help="download CIFAR-10/100 through torchvision if missing")
    group.add_argument("--n_train", type=int, default=None,
                       help="use this many training images (default: per-dataset, see below)")
    group.add_argument("--n_test", type=int, default=None,
                       help="use this many test images (default: per-dataset)")
    group.add_argument("--image_size", type=int, default=None,
                       help="image side in pixels (shapes renders at it; other datasets are "
                            "resized; default: per-dataset)")
    group.add_argument("--seed", type=int, default=2, help="random seed of the run")
    group.add_argument("--data_seed", type=int, default=0,
                       help="seed of the embedded dataset and of --n_train/--n_test subsets "
                            "(kept apart from --seed so runs with other seeds see the same data)")
    group.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    group.add_argument("--save", default=None,
                       help="run directory (default: <runs_dir>/<kind>-<timestamp>)")
    group.add_argument("--runs_dir", default="runs", help="where runs are kept and found")
    group.add_argument("--resume", default=None, metavar="RUN_DIR",
                       help=resume.may_change_help())
    group.add_argument("--report_freq", type=int, default=50, help="log every N steps")
    group.add_argument("--wandb", action="store_true",
                       help="also log the run to Weights & Biases (needs `pip install wandb`)")
    group.add_argument("--wandb_project", default="axdarts", help="W&B project of --wandb")
    group.add_argument("--wandb_mode", default="offline", choices=("offline", "online"),
                       help="offline: files under <run>/wandb for a later `wandb sync`")
    group.add_argument("--dist_timeout", type=float, default=distributed.DEFAULT_TIMEOUT_S,
                       help="under torchrun: seconds a rank waits for the others before the job "
                            "stops with an error")


def parse(parser: argparse.ArgumentParser, argv, defaults: dict[str, dict]) -> argparse.Namespace:
    """Parse the command line over the settings of `--config FILE` (if given), then fill the
    per-dataset defaults of the flags still unset."""
    args = parser.parse_args(argv)
    args.given_flags = given_flags(parser, argv)
    if args.config:
        settings = read_config(args.config, parser, args.given_flags)
        parser.set_defaults(**settings)
        args = parser.parse_args(argv)
        # a resumed run treats the file's settings as given (checked against the run's)
        args.given_flags = tuple(sorted({*given_flags(parser, argv), *settings}))
    if args.wandb:
        check_wandb()
    return apply_defaults(args, defaults)


def check_wandb() -> None:
    """--wandb fails now, before any run directory, when the package is missing."""
    try:
        import wandb  # noqa: F401
    except ImportError:
        raise ValueError("--wandb needs the wandb package: pip install wandb "
                         "(or run without --wandb)") from None


def read_config(path: str, parser: argparse.ArgumentParser, given=()) -> dict:
    """The settings of a JSON or YAML file, each checked as its flag is on the command line
    (runner/config_file.py); a run's own config.json from before some flags existed also gets
    those flags' old values, unless `given` on the command line."""
    recorded = config_file.read_settings(path)
    settings = config_file.checked_settings(path, recorded, parser, ignored=CONFIG_RECORD_ONLY,
                                            structured=("genotype",))
    if not records_a_run(recorded):
        return settings
    known = {action.dest for action in parser._actions}
    return {**settings_before_their_flags(recorded, known, given), **settings}


def apply_defaults(args: argparse.Namespace, defaults: dict[str, dict]) -> argparse.Namespace:
    """Fill flags left at None from the per-dataset table (key 'default' for other datasets)."""
    table = defaults.get(args.dataset, defaults["default"])
    for key, value in table.items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    return args


def defaults_epilog(defaults: dict[str, dict]) -> str:
    lines = ["per-dataset defaults (used where a flag is not given):"]
    for dataset, table in defaults.items():
        settings = ", ".join(f"--{key} {value}" for key, value in table.items())
        lines.append(f"  {dataset}: {settings}")
    return "\n".join(lines)


# what a run saved before a flag existed computed with: a resumed old run keeps computing so
SETTINGS_BEFORE_THEIR_FLAG = {"crop_padding": 4, "float_warmup": False, "weight_optimizer": "sgd",
                              "float_warmup_epochs": 0}


def records_a_run(settings: dict) -> bool:
    """Whether a --config file is a run's own config.json (every run records these two)."""
    return {"save", "resume"} <= set(settings)


def settings_before_their_flags(saved: dict, known, given=()) -> dict:
    """For a run's config.json written before some of the flags existed: those flags' values
    that the run computed with, unless given now, so that rerunning the file (e.g. a shapes
    search with `learning_rate: 0.1` from before `--weight_optimizer`) repeats the run rather
    than mixing its settings with today's defaults. `known`: this program's settings."""
    return {key: value for key, value in SETTINGS_BEFORE_THEIR_FLAG.items()
            if key not in saved and key in known and key not in given}


def restore_saved_config(args: argparse.Namespace, program: str) -> dict:
    """On --resume, the run's saved settings replace the command line's, but for the flags
    given on it that may change on resume (`--epochs 80` extends a run; without it the run
    keeps its own); a directory of the other program, or a given flag that would change what
    the run computes, is refused (runner/resume.py)."""
    preflight.check_resume_dir(args.resume)
    saved = RunDir(args.resume, resume=True, write=False).load_config()
    resume.check_program(args.resume, saved, program)
    given = set(getattr(args, "given_flags", ()))
    # train.py's config records the genotype itself in place of its --genotype (see train.py)
    resume.check_unchanged(args.resume, saved, vars(args), given,
                           ignored=(*CONFIG_RECORD_ONLY, "genotype"))
    for key, value in saved.items():
        if hasattr(args, key) and key not in ("resume", "given_flags") and not (
                key in resume.MAY_CHANGE_ON_RESUME and key in given):
            setattr(args, key, value)
    for key, value in settings_before_their_flags(saved, vars(args)).items():
        setattr(args, key, value)
    return saved


def given_flags(parser: argparse.ArgumentParser, argv) -> tuple[str, ...]:
    """The destinations of the flags written on the command line (not left at a default)."""
    probe = copy.deepcopy(parser)
    for action in probe._actions:
        action.default = argparse.SUPPRESS
        action.required = False
    return tuple(sorted(vars(probe.parse_known_args(argv)[0])))


def load_data(args: argparse.Namespace) -> data.Dataset:
    return data.load_dataset(args.dataset, root=args.data, download=args.download,
                             n_train=args.n_train, n_test=args.n_test, seed=args.data_seed,
                             image_size=args.image_size)
