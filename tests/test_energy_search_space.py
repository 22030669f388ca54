"""The supernet's cost tables (search.cost_tables, energy_estimator.search_space): per-op
tables, expected energy of alphas, agreement with the derived network's profile, and the
published DARTS_V2 parameter count."""

import json

import pytest
import torch

from energy_estimator import expected_energy_uj, profile
from energy_estimator.__main__ import main
from genotypes import DARTS_V2, FIXED_LAYER_GROUPS, PRIMITIVES, Genotype, fixed_assignment
from model import NetworkCIFAR
from search.cost_tables import genotype_energy_uj, op_cost, supernet_costs
from sensitivity.groups import layer_groups
from topology import NetworkShape, edge_offsets

CANDIDATES = list(PRIMITIVES) + ["sep_conv_3x3@trunc6", "dil_conv_3x3@exact"]
C, LAYERS, SIZE, CLASSES = 4, 3, 16, 10
GENOTYPE = Genotype(
    normal=[("sep_conv_3x3@trunc6", 0), ("skip_connect", 1), ("dil_conv_3x3@exact", 0),
            ("avg_pool_3x3", 2), ("sep_conv_5x5", 1), ("none", 3), ("max_pool_3x3", 4),
            ("dil_conv_5x5", 0)],
    normal_concat=[2, 3, 4, 5],
    reduce=[("max_pool_3x3", 0), ("skip_connect", 1), ("sep_conv_3x3@trunc6", 2),
            ("avg_pool_3x3", 0), ("skip_connect", 2), ("dil_conv_3x3", 1),
            ("sep_conv_3x3", 4), ("dil_conv_3x3@exact", 0)],
    reduce_concat=[2, 3, 4, 5],
)


@pytest.fixture(scope="module")
def costs():
    return supernet_costs(CANDIDATES, NetworkShape(C, CLASSES, LAYERS, input_size=SIZE),
                          fixed=GENOTYPE.fixed)


def one_hot_alphas(edges, candidates):
    alphas = torch.full((14, len(candidates)), -1e3, dtype=torch.float64)
    alphas[:, candidates.index("none")] = 1e3
    offsets = edge_offsets(4)
    for position, (op_name, j) in enumerate(edges):
        edge = offsets[position // 2] + j
        alphas[edge] = -1e3
        alphas[edge, candidates.index(op_name)] = 1e3
    return alphas


def test_edge_indexing_and_table_shapes(costs):
    assert edge_offsets(4) == [0, 2, 5, 9]
    assert costs.normal.shape == costs.reduce.shape == (14, len(CANDIDATES))
    none = CANDIDATES.index("none")
    assert torch.all(costs.normal[:, none] == 0) and costs.fixed_uj > 0
    sep = CANDIDATES.index("sep_conv_3x3")
    # reduction cell: edges from the cell inputs run at stride 2 on the larger input
    assert costs.reduce[0, sep] == costs.reduce[2, sep] != costs.reduce[4, sep]


def test_one_hot_expected_equals_genotype_equals_profile(costs):
    expected = expected_energy_uj(costs, one_hot_alphas(GENOTYPE.normal, CANDIDATES),
                                  one_hot_alphas(GENOTYPE.reduce, CANDIDATES))
    derived = genotype_energy_uj(costs, GENOTYPE, CANDIDATES)
    network = NetworkCIFAR(C, CLASSES, LAYERS, False, GENOTYPE)
    profiled = profile(network, (3, SIZE, SIZE)).energy_uj
    assert float(expected) == pytest.approx(derived, rel=1e-9)
    assert derived == pytest.approx(profiled, rel=1e-6)


def test_per_group_fixed_layers_run_and_are_priced_on_their_own_multipliers():
    """`fixed` with one multiplier per group: the network puts each group's convs on its
    multiplier (as sensitivity's module-path groups see them) and the cost tables price it
    as the profile of that network does."""
    fixed = "stem=trunc6,preprocess=bam4_4,reduce_skip=drum4,classifier=exact"
    genotype = GENOTYPE._replace(fixed=fixed)
    network = NetworkCIFAR(C, CLASSES, LAYERS, False, genotype)
    on = {group.name: group.multiplier for group in layer_groups(network, genotype)}
    assert {group: on[group] for group in FIXED_LAYER_GROUPS} == fixed_assignment(fixed)
    costs = supernet_costs(CANDIDATES, NetworkShape(C, CLASSES, LAYERS, input_size=SIZE),
                           fixed=fixed)
    profiled = profile(network, (3, SIZE, SIZE)).energy_uj
    assert genotype_energy_uj(costs, genotype, CANDIDATES) == pytest.approx(profiled, rel=1e-6)
    exact = profile(NetworkCIFAR(C, CLASSES, LAYERS, False, GENOTYPE), (3, SIZE, SIZE))
    assert profiled < exact.energy_uj


def test_expected_energy_gradient(costs):
    alphas_normal = torch.zeros(14, len(CANDIDATES), requires_grad=True)
    alphas_reduce = torch.zeros(14, len(CANDIDATES), requires_grad=True)
    energy = expected_energy_uj(costs, alphas_normal, alphas_reduce)
    assert energy.dtype == torch.float32
    energy.backward()
    for alphas in (alphas_normal, alphas_reduce):
        assert torch.isfinite(alphas.grad).all() and alphas.grad.abs().sum() > 0
    # moving weight to the expensive op raises the energy
    none, sep = CANDIDATES.index("none"), CANDIDATES.index("sep_conv_5x5")
    assert alphas_normal.grad[0, sep] > 0 > alphas_normal.grad[0, none]


def test_op_cost_values_and_cache():
    float_op = op_cost("sep_conv_3x3", 8, 1, 8, 8)
    cheap_op = op_cost("sep_conv_3x3@trunc6", 8, 1, 8, 8)
    assert op_cost("sep_conv_3x3", 8, 1, 8, 8) is float_op
    assert op_cost("none", 8, 2, 8, 8).energy_uj == 0
    assert cheap_op.macs == float_op.macs and cheap_op.arith_energy_uj < float_op.arith_energy_uj
    assert cheap_op.memory_energy_uj < float_op.memory_energy_uj  # 8-bit operands
    assert float_op.energy_uj == pytest.approx(float_op.arith_energy_uj
                                               + float_op.memory_energy_uj)


def test_genotype_op_outside_candidates(costs):
    with pytest.raises(ValueError, match="not a candidate"):
        genotype_energy_uj(costs, GENOTYPE, PRIMITIVES)


def test_darts_v2_published_params():
    network = NetworkCIFAR(36, 10, 20, True, DARTS_V2)
    report = profile(network, (3, 32, 32))
    without_head = sum(p.numel() for name, p in network.named_parameters()
                       if not name.startswith("auxiliary_head"))
    assert report.params == without_head
    assert report.params / 1e6 == pytest.approx(3.3, abs=0.05)


def test_cli_small_network(tmp_path, capsys):
    out = tmp_path / "report.json"
    main(["--genotype", "DARTS_V2", "--init_channels", "4", "--layers", "3", "--input_size",
          "16", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "total per image" in printed and "cells.0" in printed
    record = json.loads(out.read_text())
    assert record["energy_uj"] == pytest.approx(
        record["arith_energy_uj"] + record["memory_energy_uj"])


def test_cli_reports_bad_table_cleanly(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["--init_channels", "4", "--layers", "3", "--energy_table", str(bad)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "missing key 'constants'" in error
