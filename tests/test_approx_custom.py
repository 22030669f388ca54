"""A user's own multiplier: a table of unknown hash costed with the power given in its spec
(`my_mul.bin:0.21`), accepted wherever a multiplier spec is; messages name real flags only."""

import pytest

from approx import MultiplierError, load_multiplier
from approx.binfile import write_table
from approx.builtin import builtin_multiplier
from approx.multiplier import EXACT_POWER_MW
from energy_estimator import EnergyModelError, profile
from operations import build_op, candidate_ops, conv_factory


@pytest.fixture
def my_table(tmp_path):
    table = builtin_multiplier("trunc6").lut.clone()
    table[200, 200] += 1  # no longer the published circuit: an unknown hash
    path = tmp_path / "my_mul.bin"
    write_table(path, table, signed=False)
    return str(path)


def test_power_in_the_spec_costs_an_unknown_table(my_table):
    m = load_multiplier(f"{my_table}:0.21")
    assert m.name == "my_mul" and not m.signed and m.power_mw == 0.21
    assert m.relative_energy == pytest.approx(0.21 / EXACT_POWER_MW[False])
    assert load_multiplier(f"{my_table}:0.21") is m
    unknown = load_multiplier(my_table)
    assert unknown.power_mw is None and unknown.relative_energy is None
    assert f"--multipliers {my_table}:0.21" in unknown.note and "--power_mw" not in unknown.note
    builtin = load_multiplier("drum4:0.1")
    assert builtin.relative_energy == pytest.approx(0.1 / EXACT_POWER_MW[False])


def test_spec_with_power_works_in_candidates_ops_and_the_energy_model(my_table):
    spec = f"{my_table}:0.21"
    assert conv_factory(spec).keywords["multiplier"].power_mw == 0.21
    assert f"sep_conv_3x3@{spec}" in candidate_ops(["sep_conv_3x3", "skip_connect"], [spec])
    op = build_op(f"sep_conv_3x3@{spec}", 4, 1, False)
    half = build_op(f"sep_conv_3x3@{my_table}:{EXACT_POWER_MW[False] / 2}", 4, 1, False)
    exact = build_op("sep_conv_3x3@exact", 4, 1, False)
    assert profile(op, (4, 8, 8)).energy_uj > 0
    assert (profile(half, (4, 8, 8)).energy_uj < profile(exact, (4, 8, 8)).energy_uj)
    with pytest.raises(EnergyModelError, match="--multipliers .*my_mul.bin:0.21"):
        profile(build_op(f"sep_conv_3x3@{my_table}", 4, 1, False), (4, 8, 8))


@pytest.mark.parametrize("spec, message", [("drum4:fast", "power in mW"),
                                           ("drum4:-1", ">= 0"), (":0.2", "name or .bin path")])
def test_bad_power_suffix_is_one_clear_error(spec, message):
    with pytest.raises(MultiplierError, match=message):
        load_multiplier(spec)


def test_two_different_powers_are_rejected(my_table):
    with pytest.raises(MultiplierError, match="two powers"):
        load_multiplier(f"{my_table}:0.21", power_mw=0.3)
    assert load_multiplier(f"{my_table}:0.21", power_mw=0.21).power_mw == 0.21
    with pytest.raises(MultiplierError, match="must be >= 0"):
        load_multiplier(my_table, power_mw=-1)
