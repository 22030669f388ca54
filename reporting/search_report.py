"""What a search reports: per-step and per-epoch TensorBoard scalars, alpha heatmaps and
histograms, the derived genotype as text and drawn cells, the epoch summary line, and the final
genotype.json record. Under torchrun only rank 0 writes (its run directory has `write` set);
the values it logs are already averaged over the ranks."""

from __future__ import annotations

from functools import partial

import numpy as np
import torch

import energy_estimator
import genotypes
from approx import MultiplierMixture
from approx.surrogate import (
    AUTO_RANK,
    COARSE_RANK_CAP,
    FIDELITY_SHARE,
    surrogate_lines,
    surrogate_summary,
)
from model import build_network, is_fixed_layer
from reporting import drawings


def log_settings(run, config: dict, model, dataset) -> None:
    settings = ", ".join(f"{key}={value}" for key, value in sorted(config.items())
                         if key != "candidates")
    run.logger.info(f"run directory: {run.path}")
    run.logger.info(f"settings: {settings}")
    run.logger.info(f"candidates ({len(config['candidates'])}): {', '.join(config['candidates'])}")
    run.logger.info(f"dataset {dataset.name}: {len(dataset.train.labels)} train / "
                    f"{len(dataset.test.labels)} test images, {dataset.num_classes} classes; "
                    f"supernet {sum(p.numel() for p in model.weights()) / 1e6:.3f} M weights; "
                    f"uniform-alpha energy {model.reference_energy_uj():.3f} uJ/image")


def log_surrogate(run, multipliers, emulation) -> None:
    """Per multiplier, the rank of the search-time surrogate (`emulation`'s rank policy) and
    its error against the exact table (on a realistic conv), so that a capped surrogate is
    never silent; under the `auto` policy, what its fidelity costs against the coarse cap."""
    if not (run.write and multipliers):
        return
    summary = surrogate_summary(multipliers, emulation.rank_cap, emulation.lut_dir,
                                emulation.truncate_low_rank)
    for line in surrogate_lines(summary):
        run.logger.info(f"search surrogate: {line}")
    if emulation.rank_cap == AUTO_RANK:
        mixture = MultiplierMixture(multipliers, emulation.lut_dir)
        faithful, coarse = (mixture.plan(policy, emulation.truncate_low_rank).convolutions
                            for policy in (AUTO_RANK, COARSE_RANK_CAP))
        if faithful > coarse:
            run.logger.info(
                f"search surrogate: {faithful} float convolutions per approximate conv emulate "
                f"this multiplier set within {FIDELITY_SHARE:.0%} of each one's effect; "
                f"--approx_rank "
                f"{COARSE_RANK_CAP} would run {coarse} (faster, coarser)")


def log_step(run, step: int, train_loss: float, arch_stats: dict) -> None:
    if not run.write:
        return
    writer = run.writer
    writer.add_scalar("step/train_loss", train_loss, step)
    for key in ("loss", "val_ce", "energy_term"):
        if key in arch_stats:
            writer.add_scalar(f"step/arch_{key}", arch_stats[key], step)


def energy_stats(model) -> dict:
    genotype = model.genotype()
    return {
        "expected_energy_uj": float(model.expected_energy_uj().detach()),
        "energy_uj": float(model.genotype_energy_uj(genotype)),
        "genotype": genotypes.to_dict(genotype),
        "alphas": {cell: weights.detach().cpu().tolist()
                   for cell, weights in model.alpha_softmax().items()},
        "multipliers": {table: probs.tolist()
                        for table, (probs, _) in model.multiplier_softmax().items()},
    }


def log_epoch(run, record: dict, model, architect,
              figures: drawings.FigureCache | None = None) -> None:
    """An epoch's record to TensorBoard and the log, with its pictures (through `figures`, the
    run's cache, each redrawn only when it changed: ~1.5 s an epoch when all are drawn)."""
    if not run.write:
        return
    figures = figures or drawings.FigureCache()
    writer, epoch = run.writer, record["epoch"]
    for key, value in record.items():
        if isinstance(value, (int, float)) and value is not None and key != "epoch":
            writer.add_scalar(_tag(key), value, epoch)
    writer.add_scalar("lr/arch", architect.optimizer.param_groups[0]["lr"], epoch)
    _log_alphas(writer, model, epoch, figures)
    _log_multipliers(run, model, epoch, record, figures)
    genotype = genotypes.from_dict(record["genotype"])
    writer.add_text("genotype", f"`{genotype}`", epoch)
    if isinstance(genotype, genotypes.Genotype):  # cells are drawn; a backbone is its text
        for cell, image in drawings.save_genotype_figures(genotype, run.path, figures).items():
            writer.add_image(f"genotype/{cell}", image, epoch, dataformats="HWC")
    writer.flush()
    run.logger.info(
        f"epoch {epoch}: train loss {record['train_loss']:.3f} acc {record['train_acc']:.3f} | "
        f"val loss {record['val_loss']:.3f} acc {record['val_acc']:.3f} | energy expected "
        f"{record['expected_energy_uj']:.3f} uJ, genotype {record['energy_uj']:.3f} uJ | "
        f"lambda {record.get('energy_weight')} | lr {record['lr']:.4f} | "
        f"{record['epoch_s']:.1f} s")


def _tag(key: str) -> str:
    if "energy" in key:
        return f"energy/{key}"
    if key == "lr":
        return "lr/weights"
    return f"search/{key}"


def _log_alphas(writer, model, epoch: int, figures: drawings.FigureCache) -> None:
    for cell, weights in model.alpha_softmax().items():
        weights = weights.detach().cpu()
        title = f"softmax(alpha) {cell}"
        rows, columns = model.alpha_axes(cell)
        values = weights.numpy()
        image = figures.image(f"alphas_{cell}", values,
                              partial(drawings.alpha_heatmap, values, columns, title, rows))
        writer.add_image(f"alphas/{cell}", image, epoch, dataformats="HWC")
        writer.add_histogram(f"alphas/{cell}", weights.flatten(), epoch)


def _log_multipliers(run, model, epoch: int, record: dict,
                     figures: drawings.FigureCache) -> None:
    """Per multiplier table: this epoch's probabilities (rows: edge and conv op, or searched
    layer) as a TensorBoard heatmap and `multipliers_<table>.png`; and each multiplier's mean
    probability over the rows, over the epochs so far, as `multipliers_over_epochs_<table>.png`
    (and in TensorBoard)."""
    columns = model.multiplier_set()
    history = [r for r in run.history if r is not record] + [record]
    for table, (probs, rows) in model.multiplier_softmax().items():
        values = probs.numpy()
        image = figures.image(
            f"multipliers_{table}", values,
            partial(drawings.alpha_heatmap, values, columns,
                    f"multiplier probabilities, {table}", rows),
            run.path / f"multipliers_{table}.png")
        run.writer.add_image(f"multipliers/{table}", image, epoch, dataformats="HWC")
        means = [np.asarray(r["multipliers"][table]).mean(axis=0) for r in history
                 if table in r.get("multipliers", {})]
        figure = drawings.epochs_heatmap(np.stack(means, axis=1), columns,
                                         f"mean multiplier probability over epochs, {table}")
        image = drawings.saved_figure(figure, run.path / f"multipliers_over_epochs_{table}.png")
        run.writer.add_image(f"multipliers_over_epochs/{table}", image, epoch,
                             dataformats="HWC")


def genotype_costs(genotype, args, num_classes: int, input_size: int, emulation) -> dict:
    """The derived genotype's network costed at the deployed size (the retrain network the
    budget is for) and at the search size: energy per image (total, arithmetic,
    multiplications, and the breakdown into multipliers, other arithmetic, on-chip and DRAM
    traffic), each also for the fixed part alone (`fixed`: the layers outside the cells' ops,
    which no alpha controls), params and MACs; built in float mode in `emulation`'s library."""
    table = energy_estimator.load_energy_table(args.energy_table)
    sizes = {"deployed": (args.energy_channels, args.energy_layers, args.energy_image_size),
             "search": (args.init_channels, args.layers, input_size)}
    costs = {}
    for scale, (channels, layers, size) in sizes.items():
        network = build_network(genotype, channels, num_classes, layers, False,
                                emulation=emulation.for_costing())
        report = energy_estimator.profile(network, (3, size, size), table)
        costs[scale] = {"init_channels": channels, "layers": layers, "image_size": size,
                        **report.energies(), "fixed": report.energies(is_fixed_layer),
                        "accelerator": report.accelerator, "params": report.params,
                        "macs": report.macs}
    return costs


def write_result(run, args, model, architect, candidates, final: dict, dataset,
                 score=None) -> None:
    """The final genotype with its energy (in the units of the budget: the search's energy
    objective on the deployed network), its held-out accuracies (and `score(genotype)`'s
    figures: the ranking proxy) and the search settings.

    A budget-controlled search whose final genotype sits over budget reports the last
    genotype it derived under budget instead (the derived energy moves in jumps, so the last
    step can land just over), and says so."""
    if not run.write:
        return
    last = run.history[-1] if run.history else {}
    genotype = model.genotype()
    energy_uj = float(model.genotype_energy_uj(genotype))
    note = None
    feasible = architect.feasible_genotype()
    if args.energy_budget and energy_uj > args.energy_budget and feasible is not None:
        note = (f"final genotype ({energy_uj:.3f} uJ) was over the {args.energy_budget:g} uJ "
                f"budget; reporting the last genotype derived under budget")
        genotype, energy_uj = feasible
        run.logger.info(note)
    if score is not None:
        final = {**final, **score(genotype)}
    with torch.no_grad():
        expected_uj = float(model.expected_energy_uj())
    costs = genotype_costs(genotype, args, dataset.num_classes, dataset.train.images.shape[-1],
                           model.emulation)
    path = genotypes.save(
        genotype, run.path / genotypes.GENOTYPE_FILE,
        energy_uj=energy_uj, energy_objective=args.energy_objective,
        expected_energy_uj=expected_uj, uniform_energy_uj=model.reference_energy_uj(),
        fixed_energy_uj=(model.fixed_energy_uj() if hasattr(model, "fixed_energy_uj")
                         else None),
        costs=costs, val_acc=last.get("val_acc"), **final,
        energy_budget_uj=args.energy_budget, epochs=len(run.history), candidates=candidates,
        **model.describe(),
        note=note, settings=dict(vars(args)),
    )
    if run.mirror is not None:
        run.mirror.summarise({"energy_uj": energy_uj, **final, "genotype": str(genotype)})
    run.writer.add_text("genotype/final", f"`{genotype}`", len(run.history))
    run.logger.info(f"genotype: {genotype}")
    run.logger.info(
        f"genotype {args.energy_objective} energy {energy_uj:.3f} uJ/image on the deployed "
        f"network (C={args.energy_channels}, {args.energy_layers} cells, "
        f"{args.energy_image_size}x{args.energy_image_size}; uniform alphas "
        f"{model.reference_energy_uj():.3f}); held-out accuracy: supernet "
        f"{_accuracy(final.get('test_acc'))}{_scores_part(final)}; written to {path}; "
        f"retrain with: python train.py --genotype {run.path}")


def _accuracy(value) -> str:
    """An accuracy as the log prints it: three decimals (the held-out sets hold ~1,000 images),
    'n/a' where the run did not measure it."""
    return "n/a" if value is None else f"{value:.3f}"


def _scores_part(final: dict) -> str:
    """The genotype's scores the search measured: the ranking proxy, or the one-shot
    derived cell's held-out accuracy (a search computes one of them)."""
    parts = []
    if final.get("derived_acc") is not None:
        parts.append(f", derived cell {_accuracy(final['derived_acc'])}")
    if final.get("proxy_acc") is not None:
        parts.append(f", ranking proxy {final['proxy_acc']:.4f}")
    return "".join(parts)
