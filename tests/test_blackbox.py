"""The black-box strategies (blackbox/): the encoding of the space, the energies, the
selection rule, seeded and resumable sampling, and each strategy end to end on tiny settings
with its result retrained by train.py."""

import json
import random

import optuna
import pytest
import torch

import topology
import train
import train_search
from blackbox import encoding, records
from blackbox.objectives import Problem
from blackbox.runner import optimise
from blackbox.samplers import STRATEGIES
from blackbox.study import DIRECTIONS, Budget, open_study
from genotypes import GENOTYPE_FILE, split_op_name
from search.energy_model import SupernetEnergy
from search.space import NONE_OP, SearchSpace
from topology import NetworkShape

OPS = ("none", "max_pool_3x3", "skip_connect", "sep_conv_3x3", "dil_conv_3x3")
MULTS = ("exact", "drum4", "bam4_4")
TINY = ["--dataset", "shapes", "--n_train", "32", "--n_test", "16", "--image_size", "8",
        "--init_channels", "4", "--layers", "2", "--batch_size", "16", "--device", "cpu",
        "--primitives", ",".join(OPS), "--multipliers", ",".join(MULTS)]


def random_params(space, rng):
    return {name: rng.choice(dist.choices)
            for name, dist in encoding.distributions(space).items()}


@pytest.mark.parametrize("space", [SearchSpace(OPS, MULTS, "edge"),
                                   SearchSpace(OPS, MULTS, "cell"),
                                   SearchSpace(OPS, MULTS, "network"),
                                   SearchSpace(("none", "skip_connect", "sep_conv_3x3@drum4"))])
def test_every_drawn_candidate_is_a_genotype_of_the_space(space):
    rng = random.Random(0)
    for _ in range(20):
        genotype = encoding.decode(random_params(space, rng), space)
        for cell in (genotype.normal, genotype.reduce):
            assert len(cell) == 2 * topology.STEPS
            for node in range(topology.STEPS):
                (_, a), (_, b) = cell[2 * node:2 * node + 2]
                assert a < b < topology.num_inputs(node)  # two distinct inputs
            assert {op for op, _ in cell} <= set(space.columns) - {NONE_OP}


def test_shared_multipliers_are_one_parameter():
    space = SearchSpace(OPS, MULTS, "network")
    params = random_params(space, random.Random(1))
    genotype = encoding.decode(params, space)
    used = {split_op_name(op)[1] for cell in (genotype.normal, genotype.reduce)
            for op, _ in cell if split_op_name(op)[0] in space.conv_ops}
    assert used <= {params["multiplier"]}


def tiny_energy(space):
    return SupernetEnergy.priced(space, NetworkShape(4, 10, 3, input_size=8))


def test_no_candidate_costs_more_than_the_max_energy():
    space = SearchSpace(OPS, MULTS, "edge")
    problem = Problem(tiny_energy(space), None, None, None, torch.device("cpu"), None)
    rng = random.Random(2)
    energies = [problem.energy_uj(encoding.decode(random_params(space, rng), space))
                for _ in range(50)]
    assert max(energies) <= problem.max_energy_uj() + 1e-9


def test_selection_rule():
    front = [{"trial": 0, "energy_uj": 1.0, "val_acc": 0.5},
             {"trial": 1, "energy_uj": 2.0, "val_acc": 0.7},
             {"trial": 2, "energy_uj": 4.0, "val_acc": 0.75}]
    assert records.choose(front, 2.5, 0.5, 2.0)[0]["trial"] == 1  # most accurate in budget
    assert records.choose(front, None, 0.0, 2.0)[0]["trial"] == 2  # lambda 0: accuracy
    assert records.choose(front, None, 1.0, 2.0)[0]["trial"] == 0  # 0.5-0.5 > 0.7-1 > ...
    chosen, rule = records.choose(front, 0.5, 0.1, 2.0)  # nothing in budget: lambda rule
    assert chosen["trial"] == 1 and "no candidate met" in rule  # 0.7-0.1 is best
    points = [{"energy_uj": 1.0, "val_acc": 0.5}, {"energy_uj": 2.0, "val_acc": 0.4}]
    assert records.pareto_front(points) == points[:1]


class CheapProblem(Problem):
    """Scores without training: a deterministic function of the genotype, optionally
    interrupted (a Ctrl-C) at the `stop_at`-th evaluation."""

    def __init__(self, energy, stop_at=None):
        super().__init__(energy, None, None, None, torch.device("cpu"), None)
        self.calls, self.stop_at = 0, stop_at

    def evaluate(self, genotype):
        self.calls += 1
        if self.calls == self.stop_at:
            raise KeyboardInterrupt
        energy = self.energy_uj(genotype)
        skips = sum(op == "skip_connect" for op, _ in genotype.normal)
        return {"val_acc": 1.0 / (1.0 + skips + energy % 1.0), "test_acc": 0.0,
                "energy_uj": energy}


def sampled(study, strategy, seed, count, stop_at=None):
    """The genotypes of the first `count` candidates `strategy` draws into `study`."""
    space = SearchSpace(OPS, MULTS, "edge")
    optimise(study, CheapProblem(tiny_energy(space), stop_at), strategy, seed, 4, Budget(count))
    return [r["genotype"] for r in records.trial_records(study)]


def in_memory():
    return optuna.create_study(directions=list(DIRECTIONS))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_sampling_is_seeded_and_an_interrupted_run_resumes_it(tmp_path, strategy):
    # 14 candidates: past NSGA-II's first generations (4) and TPE's 10 random start-up ones
    full = sampled(in_memory(), strategy, 3, 14)
    assert sampled(in_memory(), strategy, 3, 14) == full
    assert sampled(in_memory(), strategy, 4, 14) != full
    with pytest.raises(KeyboardInterrupt):  # stored in the run directory, cut in the 12th
        sampled(open_study(tmp_path, resume=False), strategy, 3, 14, stop_at=12)
    assert len(sampled(open_study(tmp_path, resume=True), strategy, 3, 11)) == 11
    assert sampled(open_study(tmp_path, resume=True), strategy, 3, 14) == full


def search(tmp_path, name, *extra):
    run = tmp_path / name
    status = train_search.main([*TINY, "--data", str(tmp_path / "data"), "--save", str(run),
                                *extra])
    return status, run


@pytest.mark.slow
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_each_strategy_searches_and_its_result_retrains(tmp_path, strategy):
    status, run = search(tmp_path, strategy, "--strategy", strategy, "--trials", "3",
                         "--population_size", "2", "--proxy_epochs", "1")
    assert status == 0
    history = json.loads((run / "history.json").read_text())
    pareto = json.loads((run / records.PARETO_FILE).read_text())
    record = json.loads((run / GENOTYPE_FILE).read_text())
    assert len(history) == 3 and pareto["front"] and pareto["hypervolume"] > 0
    assert record["trial"] in [r["trial"] for r in records.read_front(run)]
    assert record["strategy"] == strategy and record["derived_acc"] is not None
    assert any(path.name.startswith("events.out.tfevents") for path in run.iterdir())
    retrain = [*TINY[:-4], "--data", str(tmp_path / "data"), "--epochs", "1",
               "--runs_dir", str(tmp_path)]
    assert train.main([*retrain, "--genotype", str(run), "--save", str(tmp_path / "t")]) == 0
    assert train.main([*retrain, "--genotype", "best", "--save", str(tmp_path / "b")]) == 0
    results = json.loads((tmp_path / "b" / "results.json").read_text())
    assert results["genotype"] == record["genotype"]


@pytest.mark.slow
def test_resume_extends_the_trial_count(tmp_path):
    status, run = search(tmp_path, "r", "--strategy", "random", "--trials", "2",
                         "--proxy_epochs", "1")
    assert status == 0
    assert train_search.main(["--resume", str(run), "--trials", "3"]) == 0
    assert [r["trial"] for r in json.loads((run / "history.json").read_text())] == [0, 1, 2]


@pytest.mark.parametrize("extra, message", [
    (["--strategy", "tpe", "--space", "resnet"], "--space darts"),
    (["--strategy", "nsga2", "--trials", "0"], "--trials 0"),
    (["--strategy", "nsga2", "--population_size", "1"], "--population_size 1"),
    (["--strategy", "tpe", "--proxy_epochs", "0"], "--proxy_epochs"),
])
def test_bad_input_is_one_clear_line(tmp_path, capsys, extra, message):
    status, run = search(tmp_path, "bad", *extra)
    assert status == 2
    assert message in capsys.readouterr().err
    assert not run.exists()
