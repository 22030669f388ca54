"""topology: the one definition of the DARTS cell layout, checked against the layout as the
DARTS paper and code state it, and against the networks that are built from it."""

import re
from pathlib import Path

import pytest
import torch.nn as nn

import topology
from genotypes import DARTS_V2
from model import NetworkCIFAR, NetworkImageNet
from model_search import Network
from operations import FactorizedReduce, ReLUConvBN

ROOT = Path(__file__).resolve().parents[1]

# The DARTS layout written out by hand (Liu et al., 2019; quark0/darts model_search.py).
DARTS_EDGES = [(0, 0), (0, 1),
               (1, 0), (1, 1), (1, 2),
               (2, 0), (2, 1), (2, 2), (2, 3),
               (3, 0), (3, 1), (3, 2), (3, 3), (3, 4)]
# C=16, 8 layers, stem 3*16 = 48 channels: (C_prev_prev, C_prev, C) of every cell
DARTS_CHANNELS = [(48, 48, 16), (48, 64, 16), (64, 64, 32), (64, 128, 32), (128, 128, 32),
                  (128, 128, 64), (128, 256, 64), (256, 256, 64)]


@pytest.mark.parametrize(("layers", "reductions"), [(8, (2, 5)), (20, (6, 13)), (5, (1, 3)),
                                                    (3, (1, 2))])
def test_reduction_cells_at_one_and_two_thirds(layers, reductions):
    assert topology.reduction_cells(layers) == reductions
    assert [i for i in range(layers) if topology.is_reduction(i, layers)] == list(reductions)
    assert topology.auxiliary_cell(layers) == reductions[1]


def test_edges_offsets_and_indices_of_the_darts_cell():
    assert topology.num_edges() == topology.num_edges(4) == 14
    assert topology.edge_offsets(4) == [0, 2, 5, 9]
    assert topology.edges(4) == DARTS_EDGES
    assert [topology.edge_index(node, source) for node, source in DARTS_EDGES] == list(range(14))
    assert topology.num_edges(3) == 9 and topology.num_edges(2) == 5
    assert topology.steps_for_edges(14) == 4 and topology.steps_for_edges(5) == 2
    with pytest.raises(ValueError, match="not a DARTS cell"):
        topology.steps_for_edges(13)
    with pytest.raises(ValueError, match="reads states"):
        topology.edge_index(1, 3)


def test_strides_and_concat():
    strides = [topology.edge_stride(True, source) for _, source in DARTS_EDGES]
    assert strides == [2 if source in (0, 1) else 1 for _, source in DARTS_EDGES]
    assert all(topology.edge_stride(False, source) == 1 for _, source in DARTS_EDGES)
    assert topology.preprocess0_stride(True) == 2 and topology.preprocess0_stride(False) == 1
    assert topology.concat() == [2, 3, 4, 5] and topology.concat(3, 2) == [3, 4]


def test_genotype_pairs_map_to_edges():
    assert topology.genotype_steps(DARTS_V2.normal) == 4
    assert [topology.genotype_node(p) for p in range(8)] == [0, 0, 1, 1, 2, 2, 3, 3]
    assert list(topology.genotype_positions(2)) == [4, 5]
    # DARTS_V2 normal: (0,0) (0,1) | (1,0) (1,1) | (2,1) (2,0) | (3,0) (3,2)
    assert topology.genotype_edge_indices(DARTS_V2.normal) == [0, 1, 2, 3, 6, 5, 9, 11]


def test_channels_and_resolution_of_the_darts_network():
    layouts = topology.cell_layouts(16, 8, 3 * 16, input_size=32)
    assert [(c.C_prev_prev, c.C_prev, c.C) for c in layouts] == DARTS_CHANNELS
    assert [c.reduction_prev for c in layouts] == [False] * 3 + [True] + [False] * 2 + [True, False]
    assert [c.size_prev for c in layouts] == [32, 32, 32, 16, 16, 16, 8, 8]
    assert [c.size for c in layouts] == [32, 32, 16, 16, 16, 8, 8, 8]
    assert layouts[3].size_prev_prev == 32 and layouts[-1].C_out == 256
    assert layouts[2].edge_input_size(0) == 32 and layouts[2].edge_input_size(2) == 16


def test_discrete_network_follows_the_topology():
    net = NetworkCIFAR(16, 10, 8, True, DARTS_V2)
    layouts = topology.cell_layouts(16, 8, 3 * 16)
    for cell, layout in zip(net.cells, layouts, strict=True):
        assert cell.reduction == layout.reduction
        preprocess = FactorizedReduce if layout.reduction_prev else ReLUConvBN
        assert isinstance(cell.preprocess0, preprocess)
        assert cell.preprocess1[1].in_channels == layout.C_prev
        for op, (_, source) in zip(cell.ops, DARTS_V2.normal if not cell.reduction
                                   else DARTS_V2.reduce, strict=True):
            strides = {m.stride[0] for m in op.modules() if isinstance(m, nn.Conv2d)}
            if strides:
                assert max(strides) == topology.edge_stride(cell.reduction, source)
    assert net.classifier.in_features == layouts[-1].C_out
    assert net.auxiliary_head is not None
    imagenet = NetworkImageNet(8, 10, 3, False, DARTS_V2)
    assert isinstance(imagenet.cells[0].preprocess0, FactorizedReduce)


def test_search_network_follows_the_topology():
    net = Network(4, 10, 5, nn.CrossEntropyLoss(), steps=3, multiplier=3, input_size=8,
                  candidates=("none", "skip_connect", "sep_conv_3x3"))
    layouts = topology.cell_layouts(4, 5, 3 * 4, multiplier=3)
    assert net.alphas_normal.shape[0] == topology.num_edges(3) == 9
    for cell, layout in zip(net.cells, layouts, strict=True):
        assert cell.reduction == layout.reduction
        assert isinstance(cell.preprocess0,
                          FactorizedReduce if layout.reduction_prev else ReLUConvBN)
        assert [op.stride for op in cell._ops] == [topology.edge_stride(layout.reduction, s)
                                                   for _, s in topology.edges(3)]
    assert net.classifier.in_features == layouts[-1].C_out
    assert net.genotype().normal_concat == topology.concat(3, 3)


def test_no_other_module_re_derives_the_layout():
    """The layout's formulas appear in topology.py only (tests state them independently)."""
    patterns = [r"layers\s*//\s*3", r"\b2\s*\+\s*(i|k|node)\b", r"\b(i|node)\s*\+\s*2\b",
                r"position\s*//\s*2", r"\bj\s*<\s*2\b"]
    skipped = {"tests", ".venv", ".git", "runs", "data"}
    sources = [path for path in ROOT.glob("*.py") if path.name != "topology.py"]
    sources += [path for folder in ROOT.iterdir() if folder.is_dir()
                and folder.name not in skipped for path in folder.rglob("*.py")]
    offenders = [f"{path.relative_to(ROOT)}: {pattern}" for path in sources
                 for pattern in patterns if re.search(pattern, path.read_text())]
    assert offenders == []
