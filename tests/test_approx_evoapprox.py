"""EvoApproxLib tables: catalogue figures, identification by hash, name conflicts, bad files."""

import math
import shutil
from pathlib import Path

import pytest
import torch

from approx import MultiplierError, available_multipliers, load_multiplier
from approx.binfile import write_table
from approx.evoapprox import catalogue

SHARED = Path(__file__).resolve().parents[2] / "shared" / "evoapprox"
LUTS = SHARED / "luts"
needs_shared = pytest.mark.skipif(not LUTS.is_dir(), reason="shared EvoApproxLib tables absent")
METRICS = ("mae_pct", "wce_pct", "mre_pct", "ep_pct", "wcre_pct")


def published(name: str, release: str = "v2022"):
    return next(c for c in catalogue() if c.name == name and c.release == release)


def close_to_published(value: float, figure: float) -> bool:
    """Published figures carry at least 2 significant digits: within half a unit of the second."""
    if figure == 0:
        return value == 0
    half_unit = 0.5 * 10 ** (math.floor(math.log10(abs(figure))) - 1)
    return abs(value - figure) <= half_unit + 1e-12


def test_shipped_catalogue_matches_shared_copy():
    if not (SHARED / "catalogue.csv").is_file():
        pytest.skip("shared catalogue absent")
    shared_rows = (SHARED / "catalogue.csv").read_text().splitlines()
    assert len(catalogue()) == len(shared_rows) - 1


@needs_shared
@pytest.mark.parametrize("path", sorted(LUTS.glob("*.bin")) if LUTS.is_dir() else [])
def test_tables_load_with_published_power_and_metrics(path):
    m = load_multiplier(path.stem, lut_dir=LUTS)
    circuit = published(path.stem)
    assert m.signed == circuit.signed == path.stem.startswith("mul8s")
    assert m.power_mw == circuit.power_mw and m.area_um2 == circuit.area_um2
    exact_power = 0.425 if m.signed else 0.391
    assert m.relative_energy == pytest.approx(circuit.power_mw / exact_power)
    assert m.sha256 == circuit.lut_sha256
    for metric in METRICS:
        assert close_to_published(getattr(m, metric), getattr(circuit, metric)), metric


@needs_shared
def test_same_spec_returns_cached_object():
    first = load_multiplier("mul8u_197B", lut_dir=LUTS)
    assert load_multiplier("mul8u_197B", lut_dir=str(LUTS) + "/") is first
    assert "mul8u_197B" in available_multipliers(LUTS)


@needs_shared
def test_old_release_name_reported_and_costed_as_real_circuit():
    path = SHARED / "old-release-names" / "mul8u_17C8.bin"
    with pytest.warns(UserWarning, match="master:mul8u_17C8.*not v2022:mul8u_17C8"):
        m = load_multiplier(str(path))
    real = published("mul8u_17C8", "master")
    assert m.power_mw == real.power_mw == 0.0019
    assert m.power_mw != published("mul8u_17C8").power_mw
    assert "master:mul8u_17C8" in m.note and "v2022:mul8u_17C8" in m.note
    assert close_to_published(m.mae_pct, real.mae_pct)


def test_unknown_table_has_no_power_and_says_how_to_cost_it(tmp_path):
    table = torch.outer(torch.arange(256), torch.arange(256)) & 0xFFF0
    write_table(tmp_path / "mul8u_MINE.bin", table, signed=False)
    m = load_multiplier("mul8u_MINE", lut_dir=tmp_path)
    assert m.power_mw is None and m.relative_energy is None and "--multipliers" in m.note
    assert m.mae_pct > 0 and not m.signed
    costed = load_multiplier("mul8u_MINE", lut_dir=tmp_path, power_mw=0.2)
    assert costed.relative_energy == pytest.approx(0.2 / 0.391)


def test_signedness_guessed_from_content_without_name(tmp_path):
    values = torch.arange(256)
    values = torch.where(values >= 128, values - 256, values)
    write_table(tmp_path / "table.bin", torch.outer(values, values), signed=True)
    m = load_multiplier(str(tmp_path / "table.bin"))
    assert m.signed and m.is_exact and m.power_mw == 0.425  # it is the exact mul8s_1KV6


@pytest.mark.parametrize("content", [b"", b"\x00" * 1000, b"\x00" * 131074])
def test_malformed_files_raise_clear_error(tmp_path, content):
    path = tmp_path / "mul8u_BAD.bin"
    path.write_bytes(content)
    with pytest.raises(MultiplierError, match=r"mul8u_BAD\.bin has \d+ bytes, expected 131072"):
        load_multiplier(str(path))


def test_missing_file_and_unknown_name_errors(tmp_path):
    with pytest.raises(MultiplierError, match="nothere.bin does not exist"):
        load_multiplier(str(tmp_path / "nothere.bin"))
    with pytest.raises(MultiplierError, match="mul8u_XXXX.*built-ins: exact.*--lut_dir"):
        load_multiplier("mul8u_XXXX", lut_dir=tmp_path)


@needs_shared
def test_renamed_copy_is_identified(tmp_path):
    shutil.copy(LUTS / "mul8u_197B.bin", tmp_path / "mine.bin")
    m = load_multiplier(str(tmp_path / "mine.bin"))
    assert m.power_mw == 0.206 and "v2022:mul8u_197B" in m.note
