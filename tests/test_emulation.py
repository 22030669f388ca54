"""Emulation settings live in each network's convs (approx.settings.Emulation), not in the
process: switching one network leaves every other as it was built, and a sweep's sub-runs in
one process start from the same state."""

import torch

import model_search
import sweep
from approx import Emulation
from approx.module import emulated_convs
from genotypes import DARTS_V2
from model import NetworkCIFAR
from tradeoff.plan import SubRun

FLOAT_V2 = DARTS_V2._replace(fixed="float")  # the layers outside the cells' ops in float32
APPROX_V2 = FLOAT_V2._replace(normal=[(f"{op}@drum4" if op.startswith("sep") else op, j)
                                      for op, j in DARTS_V2.normal])
SEARCH = ["--dataset", "shapes", "--n_train", "32", "--n_test", "16", "--init_channels", "4",
          "--layers", "2", "--batch_size", "16", "--epochs", "1", "--device", "cpu",
          "--multipliers", "mitchell", "--approx_rank", "1"]


def network(genotype=APPROX_V2, **settings) -> NetworkCIFAR:
    torch.manual_seed(0)
    return NetworkCIFAR(4, 10, 3, False, genotype, emulation=Emulation(**settings)).eval()


def emulation_state(model) -> list:
    return [(type(conv).__name__, conv.emulation, conv.rank) for conv in emulated_convs(model)]


@torch.no_grad()
def test_switching_one_network_to_float_leaves_the_others_emulated():
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    first, second = network(), network()
    emulated = second(x)
    as_built = emulation_state(second)
    with first.emulating(mode="float") as switched:
        assert switched == len(emulated_convs(first)) > 0
        assert {conv.mode for conv in emulated_convs(first)} == {"float"}
        assert first.emulation.mode == "float"
        float_out = first(x)
        assert emulation_state(second) == as_built
        torch.testing.assert_close(second(x), emulated, rtol=0, atol=0)
        built_meanwhile = network()  # a network built while another is switched
        assert emulation_state(built_meanwhile) == as_built
        torch.testing.assert_close(built_meanwhile(x), emulated, rtol=0, atol=0)
    assert emulation_state(first) == as_built and first.emulation.mode == "lowrank"
    torch.testing.assert_close(first(x), emulated, rtol=0, atol=0)
    # float mode is the float32 network of the same weights; the emulation differs from it
    torch.testing.assert_close(float_out, network(FLOAT_V2)(x))
    assert not torch.allclose(float_out, emulated)


def test_exact_evaluation_switches_mode_and_multiplier_of_one_network_only():
    first, second = network(), network()
    with first.emulating(mode="exact", multiplier="exact"):
        assert {(c.mode, c.multiplier.name) for c in emulated_convs(first)} == {("exact", "exact")}
        assert {(c.mode, c.multiplier.name) for c in emulated_convs(second)} == {
            ("lowrank", "drum4")}
    assert {(c.mode, c.multiplier.name) for c in emulated_convs(first)} == {("lowrank", "drum4")}


def test_a_sweeps_sub_runs_in_one_process_start_from_the_same_state(tmp_path, monkeypatch):
    """Two searches run as sweep.py runs them without subprocesses; the first one's supernet
    is left switched to float (as if a run had stopped inside a switch): the second's
    supernet still starts from its own flags' settings, as the first one did."""
    started, supernets, left_switched = [], [], []
    build = model_search.Network.__init__

    def recording_build(self, *args, **kwargs):
        build(self, *args, **kwargs)
        started.append(emulation_state(self))
        supernets.append(self)

    monkeypatch.setattr(model_search.Network, "__init__", recording_build)
    data = ["--data", str(tmp_path / "data")]
    for weight in (0, 2):
        argv = [*SEARCH, *data, "--energy_weight", str(weight), "--save",
                str(tmp_path / f"search-ew{weight}")]
        assert sweep.run_program(SubRun(f"search-ew{weight}", "search", "search", argv), argv,
                                 use_subprocess=False) == 0
        if weight == 0:
            left_switched.append(supernets[0].emulating(mode="float"))
            left_switched[0].__enter__()  # never left
            assert {conv.mode for conv in emulated_convs(supernets[0])} == {"float"}
    assert len(started) == 2 and started[0] == started[1]
    assert {settings for _, settings, _ in started[0]} == {Emulation.for_search(None, 1)}
    # the mixed convs' surrogate rank; the fixed layers run on the exact multiplier (rank 0)
    assert {(kind, rank) for kind, _, rank in started[0]} == {("MixedApproxConv2d", 1),
                                                              ("ApproxConv2d", 0)}
