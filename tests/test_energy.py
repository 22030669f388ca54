"""energy_estimator: counting against torch's FLOP counter and hand counts, the energy model,
energy table loading, hooks bookkeeping and latency."""

import json
from types import SimpleNamespace

import pytest
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

import energy_estimator
from energy_estimator import EnergyModelError, EnergyTableError, load_energy_table, profile
from energy_estimator.hooks import count_layers
from kernels.lean import LayoutBatchNorm2d, LeanBatchNorm2d

TABLE = load_energy_table()

MAC_LAYERS = [
    (nn.Conv2d(8, 16, 3, padding=1), (8, 12, 12)),  # dense, bias
    (nn.Conv2d(8, 16, 3, padding=1, groups=4, bias=False), (8, 12, 12)),  # grouped
    (nn.Conv2d(8, 8, 5, padding=2, groups=8, bias=False), (8, 12, 12)),  # depthwise
    (nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=8, bias=False), (8, 12, 12)),  # dilated
    (nn.Conv2d(8, 6, (3, 5), stride=2, padding=(1, 2), bias=False), (8, 13, 11)),  # strided
    (nn.Conv2d(8, 8, 1, stride=2, bias=False), (8, 12, 12)),  # FactorizedReduce-style
    (nn.Conv1d(4, 6, 3, padding=1), (4, 20)),
    (nn.Linear(20, 7), (20,)),
    (nn.Linear(20, 7, bias=False), (3, 20)),  # extra leading dim
]


def torch_macs(module, input_size):
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(torch.rand(1, *input_size))
    return counter.get_total_flops() // 2


@pytest.mark.parametrize("module, input_size", MAC_LAYERS)
def test_macs_match_torch_flop_counter(module, input_size):
    assert profile(module, input_size).macs == torch_macs(module, input_size)


def test_counts_are_per_image_for_any_batch():
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))
    assert count_layers(net, (3, 16, 16), batch_size=4) == count_layers(net, (3, 16, 16))


def test_hand_count_of_one_conv():
    conv = nn.Conv2d(3, 16, 3, padding=1, bias=False)
    report = profile(conv, (3, 32, 32))
    macs = 16 * 32 * 32 * 3 * 9
    assert report.macs == macs and report.params == 16 * 3 * 9
    assert report.flops == 2 * macs and report.bitops == macs * 32 * 32
    assert report.arith_energy_uj == pytest.approx(macs * (3.7 + 0.9) * 1e-6, rel=1e-12)
    weight_bytes, activation_bytes = 16 * 3 * 9 * 4, (3 + 16) * 32 * 32 * 4
    assert (report.weight_bytes, report.activation_bytes) == (weight_bytes, activation_bytes)
    words = (weight_bytes + activation_bytes) / 8  # 78 KB working set: the 1 MB SRAM tier
    assert report.memory_energy_uj == pytest.approx(words * 100 * 1e-6, rel=1e-12)
    assert report.energy_uj == pytest.approx(report.arith_energy_uj + report.memory_energy_uj)


def test_memory_tiers_and_dram():
    small = profile(nn.Conv2d(4, 4, 1, bias=False), (4, 8, 8))  # 2 KB: the 8 KB tier
    assert small.memory_energy_uj == pytest.approx(small.activation_bytes / 8 * 10 * 1e-6
                                                   + small.weight_bytes / 8 * 10 * 1e-6)
    big = profile(nn.Conv2d(64, 64, 1, bias=False), (64, 64, 64))  # 2 MB + weights
    total = big.weight_bytes + big.activation_bytes
    expected_pj = 2**20 / 8 * 100 + (total - 2**20) / 8 * 1300.0  # DRAM: 1.3 nJ per 64 bit
    assert big.memory_energy_uj == pytest.approx(expected_pj * 1e-6, rel=1e-12)


NON_MAC_LAYERS = (nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(3, 1, 1), nn.AvgPool2d(3, 2, 1),
                  nn.AdaptiveAvgPool2d(1))


def legacy_table(tmp_path):
    """A table file of the former layout (constants + sram_read_64b): today's float model."""
    data = json.loads(energy_estimator.DEFAULT_TABLE_PATH.read_text())
    constants = {**data["constants"], "dram_read_64b_pj": {"value": 1300.0}}
    tiers = [{"capacity_bytes": t["capacity_bytes"], "read_pj": t["access_pj"]}
             for t in data["levels"][0]["tiers"]]
    path = tmp_path / "legacy.json"
    path.write_text(json.dumps({"constants": constants, "sram_read_64b": tiers}))
    return path


def test_non_mac_layers_folded_and_fused_in_the_deployed_network():
    """BatchNorm folded and ReLU fused cost nothing; pools of an int8 network read 8-bit
    codes and add at the int32 add."""
    report = profile(nn.Sequential(*NON_MAC_LAYERS), (4, 8, 8), int8_network=True)
    bn, relu, max_pool, avg_pool, gap = report.layers
    assert bn.energy_uj == relu.energy_uj == 0
    assert max_pool.arith_energy_uj == pytest.approx(256 * 8 * 0.1e-6)
    assert max_pool.activation_bytes == 2 * 256
    assert avg_pool.arith_energy_uj == pytest.approx(64 * (8 * 0.1e-6 + 3.1e-6))


@pytest.mark.parametrize("norm", [LayoutBatchNorm2d(4), LeanBatchNorm2d(4, affine=False)])
def test_batch_norm_subclasses_count_and_fold_as_batch_norm(norm):
    """The networks' own BatchNorms (kernels.lean) are BatchNorm2d to the cost model: folded."""
    report = profile(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), norm), (4, 8, 8),
                     int8_network=True)
    assert report.layers[1].type == "BatchNorm2d" and report.layers[1].energy_uj == 0


def test_non_mac_layers_hand_counts(tmp_path):
    report = profile(nn.Sequential(*NON_MAC_LAYERS), (4, 8, 8), legacy_table(tmp_path))
    bn, relu, max_pool, avg_pool, gap = report.layers
    fp_add, fp_mult = 0.9e-6, 3.7e-6
    assert bn.arith_energy_uj == pytest.approx(256 * (fp_add + fp_mult))
    assert relu.arith_energy_uj == pytest.approx(256 * fp_add)
    assert max_pool.arith_energy_uj == pytest.approx(256 * 8 * fp_add)
    assert avg_pool.arith_energy_uj == pytest.approx(64 * (8 * fp_add + fp_mult))
    assert gap.arith_energy_uj == pytest.approx((64 - 4) * fp_add + 4 * fp_mult)
    assert bn.weight_bytes == 2 * 4 * 4 and report.macs == 0


def test_zero_and_identity_count_nothing():
    import operations

    for op in (operations.Zero(1), operations.Zero(2), operations.Identity(), nn.Identity()):
        report = profile(op, (4, 8, 8))
        assert report.layers == [] and report.energy_uj == 0 and report.macs == 0


class Twice(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)

    def forward(self, x):
        return self.conv(self.conv(x))


def test_module_used_twice_counts_twice_params_once():
    report = profile(Twice(), (4, 8, 8))
    single = profile(Twice().conv, (4, 8, 8))
    assert [layer.name for layer in report.layers] == ["conv", "conv#2"]
    assert report.macs == 2 * single.macs and report.params == single.params
    assert report.energy_uj == pytest.approx(2 * single.energy_uj)


def test_modes_restored_and_eval_forward():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5))
    net.train()
    net[1].eval()
    stats = net[1].running_mean.clone()
    profile(net, (3, 8, 8))
    assert [m.training for m in net.modules()] == [True, True, False, True]
    assert torch.equal(net[1].running_mean, stats)  # ran in eval mode


def fake_int8_conv(relative_energy, name="fake", power_mw=None):
    conv = nn.Conv2d(8, 16, 3, padding=1, bias=False)
    conv.multiplier = SimpleNamespace(name=name, relative_energy=relative_energy,
                                      power_mw=power_mw)
    return conv


def test_int8_layer_bytes_bitops_and_label():
    report = profile(fake_int8_conv(0.5, name="half"), (8, 10, 10))
    layer = report.layers[0]
    assert layer.multiplier == "half" and layer.bitops == layer.macs * 64
    assert layer.weight_bytes == 16 * 8 * 9 and layer.activation_bytes == (8 + 16) * 100
    assert profile(fake_int8_conv(1.0, name="mul8u_1JJQ"), (8, 4, 4)).layers[0].multiplier \
        == "int8 exact"


def test_int8_mult_share_scales_by_relative_energy():
    exact = profile(fake_int8_conv(1.0), (8, 10, 10))
    cheap = profile(fake_int8_conv(0.3), (8, 10, 10))
    requantize_uj = 16 * 100 * (3.1 + 0.1) * 1e-6  # one int32 mult + add per output
    accumulate_uj = exact.macs * TABLE.int32_add_pj * 1e-6 + requantize_uj
    assert exact.arith_energy_uj == pytest.approx(exact.macs * (0.2 + 0.1) * 1e-6
                                                  + requantize_uj, rel=1e-12)
    assert cheap.arith_energy_uj - accumulate_uj == pytest.approx(
        0.3 * (exact.arith_energy_uj - accumulate_uj), rel=1e-12)
    assert cheap.memory_energy_uj == exact.memory_energy_uj


def test_approx_conv_lowers_arith_energy_by_power_ratio():
    from approx.module import ApproxConv2d

    layers = {name: ApproxConv2d(8, 16, 3, padding=1, multiplier=name)
              for name in ("exact", "trunc6", "drum4")}
    reports = {name: profile(conv, (8, 10, 10)) for name, conv in layers.items()}
    accumulate_uj = reports["exact"].arith_energy_uj - reports["exact"].mult_energy_uj
    exact_mult_uj = reports["exact"].arith_energy_uj - accumulate_uj
    assert reports["exact"].layers[0].multiplier == "int8 exact"
    for name in ("trunc6", "drum4"):
        ratio = layers[name].multiplier.relative_energy
        assert ratio < 1 and reports[name].layers[0].multiplier == name
        mult_uj = reports[name].arith_energy_uj - accumulate_uj
        assert mult_uj == pytest.approx(ratio * exact_mult_uj, rel=1e-12)


def test_unknown_power_asks_for_the_power_in_the_spec():
    with pytest.raises(EnergyModelError, match="--multipliers path/to/mystery.bin:0.21"):
        profile(fake_int8_conv(None, name="mystery"), (8, 4, 4))
    from_power = profile(fake_int8_conv(None, power_mw=0.391 / 2), (8, 4, 4))
    assert from_power.arith_energy_uj == pytest.approx(
        profile(fake_int8_conv(0.5), (8, 4, 4)).arith_energy_uj)


def write_table(tmp_path, mutate):
    data = json.loads(energy_estimator.DEFAULT_TABLE_PATH.read_text())
    mutate(data)
    path = tmp_path / "table.json"
    path.write_text(json.dumps(data))
    return path


def test_energy_table_default_values():
    assert (TABLE.int8_mult_pj, TABLE.fp32_mult_pj, TABLE.fp32_add_pj) == (0.2, 3.7, 0.9)
    sram, dram = TABLE.levels
    assert sram.tiers == ((8192, 10 / 8), (32768, 20 / 8), (1048576, 100 / 8))  # pJ per byte
    assert dram.off_chip and dram.tiers[0][1] == 1300 / 8 and TABLE.name == "sram_45nm"
    assert TABLE.fold_batchnorm and TABLE.fuse_relu and TABLE.requantize


def test_legacy_table_file_loads_as_the_former_model(tmp_path):
    table = load_energy_table(legacy_table(tmp_path))
    assert table.levels[:1] == TABLE.levels[:1] and table.levels[1].tiers == TABLE.levels[1].tiers
    assert not (table.fold_batchnorm or table.fuse_relu or table.requantize)


def test_user_energy_table_is_used(tmp_path):
    path = write_table(tmp_path, lambda d: d["constants"]["fp32_mult_pj"].update(value=7.4))
    conv = nn.Conv2d(3, 4, 3, bias=False)
    report = profile(conv, (3, 8, 8), energy_table=str(path))
    assert report.arith_energy_uj == pytest.approx(report.macs * (7.4 + 0.9) * 1e-6)
    assert report.energy_table == str(path)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["constants"].pop("int8_mult_pj"), "constants.int8_mult_pj"),
    (lambda d: d.pop("levels"), "levels"),
    (lambda d: d["levels"][0]["tiers"][1].pop("access_pj"), r"levels\[0\].tiers\[1\].access_pj"),
    (lambda d: d["constants"]["fp32_add_pj"].update(value="x"), "fp32_add_pj"),
    (lambda d: d["levels"][0]["tiers"].reverse(), "smallest capacity first"),
    (lambda d: d["widths"]["weight_bits"].update(value=4), "weight_bits' must be 8"),
    (lambda d: d["levels"][1].update(capacity_bytes=8), "outermost level"),
    (lambda d: d["levels"][0]["per_element"].update(bias=1), "per_element"),
])
def test_energy_table_errors_name_file_and_key(tmp_path, mutate, message):
    path = write_table(tmp_path, mutate)
    with pytest.raises(EnergyTableError, match=message) as error:
        load_energy_table(path)
    assert str(path) in str(error.value)


def test_energy_table_unreadable(tmp_path):
    with pytest.raises(EnergyTableError, match="cannot read"):
        load_energy_table(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(EnergyTableError, match="not valid JSON"):
        load_energy_table(tmp_path / "bad.json")


def test_report_table_and_json(tmp_path):
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())
    report = profile(net, (3, 8, 8))
    text = report.table()
    assert "Conv2d" in text and "total per image" in text
    data = json.loads(report.save_json(tmp_path / "r.json").read_text())
    assert data["macs"] == report.macs and len(data["layers"]) == 2
    assert data["layers"][0]["energy_uj"] == pytest.approx(report.layers[0].energy_uj)


def test_measure_latency():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).train()
    result = energy_estimator.measure_latency(net, (3, 8, 8), batch_size=2, repeats=3)
    assert result["median_ms_per_image"] > 0 and result["batch_size"] == 2
    assert net.training
