"""Benchmark of one DARTS search step (architecture step + weight step with grad clip).

Standard config (DARTS CIFAR-10 search): 8 cells, C=16, 4 nodes, 32x32 inputs, 10 classes, the
8 DARTS primitives, synthetic data. Prints ONE JSON line: median/min/max step seconds over
`--steps` after `--warmup`, the alpha-step and weight-step medians, training images/s and the
process's peak RSS. `--multipliers exact,mul8u_197B` adds `<conv op>@<m>` candidates;
`--factorised --multipliers drum6,kulkarni,drum4,bam4_4` searches that set (with `exact`) per
conv op, and `--vs_exact` then times the float supernet beside it.

    .venv/bin/python bench/search_step.py --order first --batch_size 64
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import data  # noqa: E402
import operations  # noqa: E402
from approx import Emulation  # noqa: E402
from approx.surrogate import SEARCH_RANK_POLICY  # noqa: E402
from architect import Architect, alphas_frozen  # noqa: E402
from genotypes import PRIMITIVES  # noqa: E402
from model_search import Network  # noqa: E402
from preflight import check_at_least, check_image_size  # noqa: E402
from runner.errors import exit_status  # noqa: E402
from search.sampling import MULTIPLIER_SAMPLINGS  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--order", choices=("first", "second"), default="first")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5, help="timed steps (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--multipliers", default="",
                        help="comma-separated multipliers adding '<conv op>@<m>' candidates "
                             "(with --factorised: the multiplier set searched per conv op)")
    parser.add_argument("--primitives", default=",".join(PRIMITIVES), help="candidate ops")
    parser.add_argument("--factorised", action="store_true",
                        help="the factorised space: every conv op on a mixture of 'exact' and "
                             "--multipliers (one shared weight per op), no float conv ops")
    parser.add_argument("--lut_dir", default=None, help="EvoApproxLib .bin directory")
    parser.add_argument("--partial_channels", type=int, default=1,
                        help="PC-DARTS: MixedOp on 1/K of the channels (1 = plain DARTS)")
    parser.add_argument("--approx_rank", default=SEARCH_RANK_POLICY,
                        help="the search surrogate's rank policy, as train_search.py "
                             "--approx_rank: 'auto', a rank cap, or -1 (each multiplier's "
                             "default rank)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default all)")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="bf16 = CPU autocast to bfloat16")
    parser.add_argument("--fixed_multiplier", default="float",
                        help="multiplier of the stem, preprocess convs, FactorizedReduce and "
                             "classifier ('float': the float32 hybrid supernet; train_search "
                             "uses the exact multiplier of the set's kind)")
    parser.add_argument("--init_channels", type=int, default=16)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--input_size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--multiplier_sampling", choices=MULTIPLIER_SAMPLINGS, default="mixture",
                        help="--factorised: how a forward sees the multipliers, as "
                             "train_search.py (gumbel: one sampled multiplier per conv op)")
    parser.add_argument("--vs_exact", action="store_true",
                        help="also time the exact-arithmetic supernet (no --multipliers), its "
                             "steps interleaved with these so that the machine's drift cancels; "
                             "adds its median and the ratio (peak RSS then covers both)")
    parser.add_argument("--fidelity_steps", type=int, default=0,
                        help="instead of timing: search this many steps on the embedded "
                             "'shapes' data, then report the supernet's test accuracy with the "
                             "approximate convs as the search surrogate, in full 'lowrank' and "
                             "in 'exact' mode")
    parser.add_argument("--fidelity_test", type=int, default=1000,
                        help="test images of the fidelity report")
    return parser.parse_args(argv)


def build(args):
    emulation = Emulation.for_search(args.lut_dir, args.approx_rank)  # as train_search.py
    multipliers = [m.strip() for m in args.multipliers.split(",") if m.strip()]
    primitives = [p.strip() for p in args.primitives.split(",") if p.strip()]
    if args.factorised and multipliers:
        space = {"candidates": primitives,
                 "multipliers": tuple(dict.fromkeys(["exact", *multipliers])),
                 "multiplier_sampling": args.multiplier_sampling}
    else:
        space = {"candidates": operations.candidate_ops(primitives, multipliers, emulation)}
    model = Network(args.init_channels, 10, args.layers, nn.CrossEntropyLoss(),
                    emulation=emulation, input_size=args.input_size,
                    partial_channels=args.partial_channels,
                    fixed_multiplier=args.fixed_multiplier, **space)
    w_optimizer = torch.optim.SGD(model.weights(), 0.025, momentum=0.9, weight_decay=3e-4)
    architect = Architect(model, energy_weight=0.5)
    return model, w_optimizer, architect


def synthetic_batches(args, count):
    generator = torch.Generator().manual_seed(args.seed)
    shape = (args.batch_size, 3, args.input_size, args.input_size)
    for _ in range(count):
        yield (torch.randn(shape, generator=generator),
               torch.randint(0, 10, (args.batch_size,), generator=generator),
               torch.randn(shape, generator=generator),
               torch.randint(0, 10, (args.batch_size,), generator=generator))


def autocast(precision):
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def search_step(model, architect, w_optimizer, batch, args):
    """(alpha-step seconds, weight-step seconds) of one search step."""
    x, y, val_x, val_y = batch
    started = time.perf_counter()
    with autocast(args.precision):
        architect.step(x, y, val_x, val_y, 0.025, w_optimizer, unrolled=args.order == "second")
    alpha_done = time.perf_counter()
    w_optimizer.zero_grad(set_to_none=True)
    with autocast(args.precision), alphas_frozen(model):  # as search.bilevel.weight_step
        loss = model.loss(x, y)
        loss.backward()
    nn.utils.clip_grad_norm_(model.weights(), 5.0)
    w_optimizer.step()
    return alpha_done - started, time.perf_counter() - alpha_done


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # Linux: KiB


@torch.no_grad()
def predict(model, images, batch_size=128) -> torch.Tensor:
    model.eval()
    logits = torch.cat([model(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])
    model.train()
    return logits


def emulations(rank_cap):
    """(name, mode, rank cap) of each emulation the fidelity report compares."""
    return (("surrogate", "lowrank", rank_cap), ("lowrank_full", "lowrank", None),
            ("exact", "exact", None))


def fidelity(args) -> dict:
    """Search `--fidelity_steps` steps on shapes, then evaluate the same weights with the
    approximate convs emulated three ways: the search surrogate (`--approx_rank`), the
    multipliers' full low-rank emulation, and the exact tables. Per emulation: test accuracy,
    and against exact: top-1 agreement and the relative error of the logits."""
    dataset = data.load_dataset("shapes", seed=args.seed, n_test=args.fidelity_test)
    mean = torch.tensor(dataset.mean).view(1, 3, 1, 1)
    std = torch.tensor(dataset.std).view(1, 3, 1, 1)

    def normalised(split):
        return (split.images.float() / 255 - mean) / std, split.labels

    images, labels = normalised(dataset.train)
    args.input_size = images.shape[-1]
    model, w_optimizer, architect = build(args)
    generator = torch.Generator().manual_seed(args.seed)
    started = time.perf_counter()
    for _ in range(args.fidelity_steps):
        index = torch.randperm(len(labels), generator=generator)[:2 * args.batch_size]
        half = args.batch_size
        batch = (images[index[:half]], labels[index[:half]], images[index[half:]],
                 labels[index[half:]])
        search_step(model, architect, w_optimizer, batch, args)
    search_s = time.perf_counter() - started
    test_images, test_labels = normalised(dataset.test)
    logits = {}
    for name, mode, cap in emulations(model.emulation.rank_cap):
        with model.emulating(mode=mode, rank_cap=cap):
            logits[name] = predict(model, test_images)
    exact = logits["exact"]
    result = {f"test_acc_{name}": round(float((out.argmax(1) == test_labels).float().mean()), 4)
              for name, out in logits.items()}
    for name, out in logits.items():
        if name != "exact":
            result[f"agreement_{name}_vs_exact"] = round(
                float((out.argmax(1) == exact.argmax(1)).float().mean()), 4)
            result[f"logit_rel_err_{name}"] = round(float((out - exact).norm() / exact.norm()), 5)
    return {**result, "test_images": len(test_labels), "steps": args.fidelity_steps,
            "search_s": round(search_s, 1), "candidates": list(model.candidates),
            "config": vars(args)}


def check_args(args) -> None:
    """The sizes that would otherwise fail inside the network or leave no timed step."""
    for flag, value, minimum in (("--steps", args.steps, 1), ("--warmup", args.warmup, 0),
                                 ("--batch_size", args.batch_size, 1),
                                 ("--init_channels", args.init_channels, 1),
                                 ("--layers", args.layers, 1)):
        check_at_least(flag, value, minimum, "too few for a measurement")
    check_image_size("--input_size", args.input_size, args.layers)


def main(argv=None):
    args = parse_args(argv)
    status = exit_status(lambda: check_args(args))
    if status:
        return status
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.fidelity_steps:
        print(json.dumps(fidelity(args)))
        return
    build_started = time.perf_counter()
    model, w_optimizer, architect = build(args)
    build_s = time.perf_counter() - build_started
    model.train()
    exact = None
    if args.vs_exact:
        exact = build(argparse.Namespace(**{**vars(args), "multipliers": ""}))
        exact[0].train()
    times, exact_times = [], []
    for index, batch in enumerate(synthetic_batches(args, args.warmup + args.steps)):
        alpha_s, weight_s = search_step(model, architect, w_optimizer, batch, args)
        if exact is not None:
            exact_model, exact_w_optimizer, exact_architect = exact
            exact_alpha_s, exact_weight_s = search_step(exact_model, exact_architect,
                                                        exact_w_optimizer, batch, args)
        if index >= args.warmup:
            times.append((alpha_s + weight_s, alpha_s, weight_s))
            if exact is not None:
                exact_times.append((exact_alpha_s + exact_weight_s, exact_alpha_s,
                                    exact_weight_s))
    totals = [t[0] for t in times]
    median = statistics.median(totals)
    print(json.dumps({
        "step_s_median": round(median, 3), "step_s_min": round(min(totals), 3),
        "step_s_max": round(max(totals), 3),
        "alpha_step_s": round(statistics.median(t[1] for t in times), 3),
        "weight_step_s": round(statistics.median(t[2] for t in times), 3),
        "train_images_per_s": round(args.batch_size / median, 2),
        "peak_rss_gb": round(peak_rss_gb(), 3), "build_s": round(build_s, 2),
        "candidates": len(model.candidates), "multiplier_set": list(model.space.multipliers),
        "threads": torch.get_num_threads(),
        "load_avg": [round(v, 2) for v in __import__("os").getloadavg()],
        **exact_figures(exact_times, times),
        "config": {k: v for k, v in vars(args).items()},
    }))


def exact_figures(exact_times, times) -> dict:
    """`--vs_exact`: the exact-arithmetic supernet's medians (step, alpha step, weight step)
    and this supernet's ratio to each, side by side (the steps interleaved: shared-machine
    drift cancels in the ratios, not in the absolute times)."""
    if not exact_times:
        return {}
    figures = {}
    for k, part in enumerate(("step", "alpha_step", "weight_step")):
        exact_median = statistics.median(t[k] for t in exact_times)
        figures[f"exact_{part}_s_median"] = round(exact_median, 3)
        figures[f"{part}_ratio_to_exact"] = round(
            statistics.median(t[k] for t in times) / exact_median, 2)
    figures["ratio_to_exact"] = figures.pop("step_ratio_to_exact")
    return figures


if __name__ == "__main__":
    sys.exit(main())
