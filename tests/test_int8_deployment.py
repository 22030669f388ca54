"""The deployed int8 network and its accelerator energy model: presets with their published
ratios, the breakdown, an independent count of one layer, every conv on the fixed multiplier,
a reducing skip_connect cheaper than any sep_conv_3x3, old genotype files, signed sets."""

import json

import pytest
import torch.nn as nn

import genotypes
import train_search
from approx.module import ApproxConv2d
from energy_estimator import load_energy_table, preset_names, profile
from energy_estimator.report import BREAKDOWN_FIELDS
from model import NetworkCIFAR
from search.cost_tables import op_cost

PRESETS = ("sram_45nm", "eyeriss_like")


def test_presets_hold_the_published_ratios():
    assert set(PRESETS) <= set(preset_names())
    eyeriss = load_energy_table("eyeriss_like")
    mac_pj = 0.3  # int8 mult 0.2 + int32 add 0.1 (Horowitz 45 nm)
    ratios = [level.tiers[0][1] / mac_pj for level in eyeriss.levels]  # per byte
    assert ratios == pytest.approx([1, 2, 6, 200])  # Chen et al., ISCA 2016
    assert [level.off_chip for level in eyeriss.levels] == [False, False, False, True]
    assert eyeriss.levels[2].capacity_bytes == 108 * 1024


@pytest.mark.parametrize("accelerator", PRESETS)
def test_breakdown_sums_to_the_total(accelerator):
    genotype = genotypes.published("DARTS_V2@bam4_4")
    report = profile(NetworkCIFAR(8, 10, 5, False, genotype), (3, 16, 16), accelerator)
    assert report.accelerator == accelerator and report.dram_energy_uj >= 0
    assert sum(getattr(report, key) for key in BREAKDOWN_FIELDS) == pytest.approx(
        report.energy_uj, rel=1e-12)
    for layer in report.layers:
        parts = sum(layer.to_dict()[key] for key in BREAKDOWN_FIELDS)
        assert parts == pytest.approx(layer.energy_uj, rel=1e-12, abs=1e-15)


def test_one_int8_conv_counted_by_hand_on_eyeriss():
    """An independent count of a 3x3 conv (8 -> 16 channels, 10x10, exact multiplier)."""
    conv = ApproxConv2d(8, 16, 3, padding=1, multiplier="exact")
    report = profile(conv, (8, 10, 10), "eyeriss_like", int8_network=True)
    macs, outputs = 16 * 100 * 8 * 9, 16 * 100
    weight_b, input_b, output_b = 16 * 8 * 9, 8 * 100, outputs  # int8 bytes
    assert report.macs == macs
    assert report.mult_energy_uj == pytest.approx(macs * 0.2e-6)
    arith_pj = macs * (0.2 + 0.1) + outputs * (3.1 + 0.1)  # MACs and requantisation
    assert report.arith_energy_uj == pytest.approx(arith_pj * 1e-6)
    rf_pj = macs * (1 + 1 + 2 * 4) * 0.3  # weight, input, 32-bit psum read + write
    array_pj = (weight_b + input_b + output_b) * 0.6
    buffer_pj = (input_b + output_b) * 1.8
    assert report.onchip_energy_uj == pytest.approx((rf_pj + array_pj + buffer_pj) * 1e-6)
    assert report.dram_energy_uj == pytest.approx(weight_b * 60 * 1e-6)


def test_activations_spill_from_the_global_buffer_to_dram():
    conv = ApproxConv2d(64, 64, 1, multiplier="exact")
    report = profile(conv, (64, 32, 32), "eyeriss_like", int8_network=True)
    activations = 2 * 64 * 32 * 32  # 128 KB > 108 KB
    spilled = activations * (1 - 108 * 1024 / activations)
    assert report.dram_energy_uj == pytest.approx((64 * 64 + spilled) * 60 * 1e-6)


@pytest.mark.parametrize("accelerator", PRESETS)
def test_reducing_skip_connect_costs_less_than_any_sep_conv(accelerator):
    skip = op_cost("skip_connect", 16, 2, 16, 16, energy_table=accelerator, fixed="exact")
    for multiplier in ("", "@exact", "@bam4_4"):
        sep = op_cost(f"sep_conv_3x3{multiplier}", 16, 2, 16, 16, energy_table=accelerator,
                      fixed="exact")
        assert skip.energy_uj < sep.energy_uj, multiplier


def test_old_genotype_file_loads_with_float_fixed_layers(tmp_path):
    record = genotypes.to_dict(genotypes.DARTS_V2)
    del record["fixed"]
    path = tmp_path / "genotype.json"
    path.write_text(json.dumps({"genotype": record}))
    genotype = genotypes.load(path)
    assert genotype.fixed == "float" and genotype[:4] == genotypes.DARTS_V2[:4]
    network = NetworkCIFAR(4, 10, 3, False, genotype)
    assert type(network.stem[0]) is nn.Conv2d and type(network.classifier) is nn.Linear
    assert genotypes.Genotype([], [], [], []).fixed == "exact"  # the 4-field constructor
    assert genotypes.load(genotypes.save(genotype, tmp_path / "again.json")) == genotype


TINY = ["--dataset", "shapes", "--n_train", "32", "--n_test", "16", "--init_channels", "4",
        "--layers", "2", "--batch_size", "16", "--device", "cpu", "--epochs", "1",
        "--energy_channels", "4", "--energy_layers", "2"]


def test_signed_set_searches(tmp_path, evoapprox_dir):
    run = tmp_path / "signed"
    status = train_search.main([*TINY, "--data", str(tmp_path / "data"), "--save", str(run),
                                "--multipliers", "mul8s_1L2J",
                                "--lut_dir", str(evoapprox_dir / "luts")])
    assert status == 0
    record = json.loads((run / genotypes.GENOTYPE_FILE).read_text())
    assert record["multiplier_set"] == ["exact_s", "mul8s_1L2J"]
    assert record["genotype"]["fixed"] == "exact_s"
    assert record["costs"]["deployed"]["fixed"]["energy_uj"] > 0


def test_mixing_signed_and_unsigned_is_one_clear_line(tmp_path, evoapprox_dir, capsys):
    status = train_search.main([*TINY, "--data", str(tmp_path / "data"), "--save",
                                str(tmp_path / "mixed"), "--multipliers", "trunc6,mul8s_1L2J",
                                "--lut_dir", str(evoapprox_dir / "luts")])
    err = capsys.readouterr().err.strip()
    assert status == 2 and err.count("\n") == 0 and "mixes signed" in err
    assert not (tmp_path / "mixed").exists()
