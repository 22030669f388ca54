"""What a retrain reports: the start summary, per-epoch logs, and the final evaluation (accuracy
with the real multipliers, with the training surrogate and with exact 8-bit arithmetic, of the
float32 network, and of the deployed int8 network of deploy/), cost,
latency and the STL verdict, written to results.json. Under torchrun every rank takes part
in the (sharded) evaluation; only rank 0 measures latency and writes."""

from __future__ import annotations

import time

import deploy
import energy_estimator
import genotypes
import preflight
import stl
from approx.module import emulated_convs
from approx.settings import FLOAT_MODE
from model import is_fixed_layer
from runner.files import atomic_write_json
from runner.skeleton import evaluate

RESULTS_FILE = "results.json"
# the numeric keys of train.py's per-epoch record: the signals an STL spec can read
# the energy per image of the deployed network; `fixed`: its layers outside the cells' ops
ENERGY_SIGNALS = ("energy_uj", "energy_arith_uj", "energy_memory_uj", "energy_mult_uj",
                  "energy_onchip_uj", "energy_dram_uj", "energy_fixed_uj",
                  "energy_fixed_arith_uj", "energy_fixed_mult_uj")
RETRAIN_SIGNALS = ("epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc",
                   *ENERGY_SIGNALS, "epoch_s")
# --final_eval: every final pass; only those a comparison of genotypes needs (the real
# tables and the deployed int8 network; exact int8 and float32 skipped); or the real tables
# alone (the deployed int8 network's build, calibration and integer pass skipped too)
FINAL_EVAL_ALL, FINAL_EVAL_DEPLOYMENT, FINAL_EVAL_TABLES = "all", "deployment", "tables"
FINAL_EVALS = (FINAL_EVAL_ALL, FINAL_EVAL_DEPLOYMENT, FINAL_EVAL_TABLES)
# the history.json signal holding each search energy objective (energy_estimator)
OBJECTIVE_SIGNALS = {"total": "energy_uj", "arithmetic": "energy_arith_uj",
                     "multiplier": "energy_mult_uj"}


def default_spec(genotype_record: dict) -> str:
    """`F(test_acc >= 0.8)`, and with a search budget B the clause `G(<energy> <= B)` on the
    energy the budget was set for (the search's objective, on the deployed network)."""
    budget = genotype_record.get("energy_budget_uj")
    accuracy_clause = "F(test_acc >= 0.8)"
    signal = OBJECTIVE_SIGNALS[genotype_record.get("energy_objective") or "total"]
    return f"G({signal} <= {budget:g}) & {accuracy_clause}" if budget else accuracy_clause


def check_spec(spec: str) -> None:
    """Parse the STL spec and check its signals before training starts (a bad spec or a
    misspelled signal fails in seconds, not after the whole run)."""
    preflight.check_stl_signals("--stl", spec, stl.parse(spec).signals(), RETRAIN_SIGNALS)


def energy_signals(cost) -> dict:
    """The energy per image of the profiled network, as history.json and results.json hold it."""
    fixed = cost.energies(is_fixed_layer)
    values = (cost.energy_uj, cost.arith_energy_uj, cost.memory_energy_uj, cost.mult_energy_uj,
              cost.onchip_energy_uj, cost.dram_energy_uj, fixed["energy_uj"],
              fixed["arith_energy_uj"], fixed["mult_energy_uj"])
    return dict(zip(ENERGY_SIGNALS, values, strict=True))


def log_start(run, genotype, genotype_record: dict, cost, dataset,
              float_epochs: int = 0) -> None:
    run.logger.info(f"run directory: {run.path}")
    run.logger.info(f"genotype from {genotype_record.get('source')} "
                    f"({genotype_record.get('reason')}): {genotype}")
    run.logger.info(f"dataset {dataset.name}: {len(dataset.train.labels)} train / "
                    f"{len(dataset.test.labels)} test images; network {cost.params / 1e6:.3f} M "
                    f"params, {cost.macs / 1e6:.1f} M MACs, {cost.energy_uj:.3f} uJ/image "
                    f"(arithmetic {cost.arith_energy_uj:.3f}, memory {cost.memory_energy_uj:.3f})")
    if float_epochs:
        run.logger.info(f"the first {float_epochs} epoch(s) train in float32 "
                        f"(--float_warmup_epochs), then on the multipliers' emulation")


def log_epoch(run, record: dict) -> None:
    if not run.write:
        return
    writer, epoch = run.writer, record["epoch"]
    for key, value in record.items():
        if key != "epoch" and isinstance(value, (int, float)):
            writer.add_scalar(_tag(key), value, epoch)
    writer.flush()
    run.logger.info(
        f"epoch {epoch}: train loss {record['train_loss']:.3f} acc {record['train_acc']:.3f} | "
        f"test loss {record['test_loss']:.3f} acc {record['test_acc']:.3f} | "
        f"lr {record['lr']:.4f} | {record['energy_uj']:.3f} uJ/image | {record['epoch_s']:.1f} s")


def _tag(key: str) -> str:
    if key.startswith("energy"):
        return f"energy/{key}"
    return "lr" if key == "lr" else f"train/{key}"


def final_accuracies(model, loader, last_test_acc: float | None = None,
                     comparisons: bool = True) -> dict:
    """Test accuracy with the real truth tables, the training surrogate, and exact int8.
    `last_test_acc`, the last epoch's test pass (same weights, same surrogate, same images),
    stands for the surrogate's pass; without `comparisons` the exact-int8 pass is skipped
    (None)."""
    surrogate = last_test_acc
    if surrogate is None:
        surrogate = evaluate(model, loader, "test")["test_acc"]
    accuracies = {"test_acc_surrogate": surrogate}
    if not emulated_convs(model):
        accuracies["test_acc"] = accuracies["test_acc_exact_arith"] = surrogate
        return accuracies
    with model.emulating(mode="exact"):
        accuracies["test_acc"] = evaluate(model, loader, "test")["test_acc"]
    accuracies["test_acc_exact_arith"] = None
    if comparisons:
        with model.emulating(mode="exact", multiplier="exact"):
            accuracies["test_acc_exact_arith"] = evaluate(model, loader, "test")["test_acc"]
    return accuracies


def deployed_accuracies(model, loader, dataset, comparisons: bool = True) -> dict:
    """Test accuracy of the float32 network (every conv float, same weights; skipped, None,
    without `comparisons`) and of the deployed int8 network (deploy.build: BatchNorm folded,
    calibrated 8-bit activations, integer accumulation on each layer's real table); None where
    deploy cannot convert."""
    accuracies = {"test_acc_float32": None}
    if comparisons:
        with model.emulating(mode=FLOAT_MODE):
            accuracies["test_acc_float32"] = evaluate(model, loader, "test")["test_acc"]
    device = next(model.parameters()).device
    calibration = deploy.calibration_loader(dataset, device)
    try:
        net = deploy.build(model, calibration)
    except deploy.DeployError:
        return {**accuracies, "test_acc_deployed_int8": None}
    return {**accuracies, "test_acc_deployed_int8": evaluate(net, loader, "test")["test_acc"],
            "deployed_calibration_images": len(calibration.labels)}


def finish(run, args, model, loader, cost, stl_spec, genotype, genotype_record,
           dataset) -> dict:
    started = time.time()
    comparisons = args.final_eval == FINAL_EVAL_ALL
    last_test_acc = run.history[-1]["test_acc"] if run.history else None
    accuracies = final_accuracies(model, loader, last_test_acc, comparisons)
    if args.final_eval == FINAL_EVAL_TABLES:
        accuracies.update(test_acc_float32=None, test_acc_deployed_int8=None)
    else:
        accuracies.update(deployed_accuracies(model, loader, dataset, comparisons))
    latency = _latency_ms(model, dataset) if run.write else None
    verdict = stl.explain(stl_spec, stl.trace_from_history(run.history),
                          normalize=args.stl_normalize)
    results = {
        "genotype": genotypes.to_dict(genotype), "genotype_source": genotype_record.get("source"),
        **accuracies, "epochs": len(run.history),
        "params": cost.params, "macs": cost.macs, **energy_signals(cost),
        "latency_ms_per_image": latency,
        "train_s": sum(record["epoch_s"] for record in run.history),
        "final_eval_s": time.time() - started,
        "stl": verdict.to_dict(), "cost": cost.to_dict(),
    }
    if run.write:
        atomic_write_json(run.path / RESULTS_FILE, results)
        _log_results(run, results, verdict)
        if run.mirror is not None:
            run.mirror.summarise({**results, "stl_robustness": verdict.robustness})
    return results


def _latency_ms(model, dataset) -> float:
    """Median latency per image, in ms, on the model's device."""
    latency = energy_estimator.measure_latency(model, (3, *dataset.test.images.shape[-2:]),
                                               device=next(model.parameters()).device)
    return latency["median_ms_per_image"]


def _log_results(run, results: dict, verdict) -> None:
    writer, step = run.writer, results["epochs"]
    for key in ("test_acc", "test_acc_surrogate", "test_acc_exact_arith", "test_acc_float32",
                "test_acc_deployed_int8"):
        if results[key] is not None:
            writer.add_scalar(f"final/{key}", results[key], step)
    writer.add_scalar("stl/robustness", verdict.robustness, step)
    writer.add_text("stl/verdict", f"```\n{verdict.format()}\n```", step)
    writer.flush()
    run.logger.info(
        f"test accuracy {results['test_acc']:.4f} on the real multipliers "
        f"(training surrogate {results['test_acc_surrogate']:.4f}, exact int8 "
        f"{_fraction(results['test_acc_exact_arith'])}, "
        f"float32 {_fraction(results['test_acc_float32'])}, "
        f"deployed int8 {_fraction(results['test_acc_deployed_int8'])}); "
        f"{results['params'] / 1e6:.3f} M params, "
        f"{results['macs'] / 1e6:.1f} M MACs, {results['energy_uj']:.3f} uJ/image "
        f"(arithmetic {results['energy_arith_uj']:.3f}, memory {results['energy_memory_uj']:.3f}),"
        f" latency {results['latency_ms_per_image']:.2f} ms/image")
    run.logger.info("STL verdict:\n" + verdict.format())
    run.logger.info(f"results written to {run.path / RESULTS_FILE}")


def _fraction(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"
