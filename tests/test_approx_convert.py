"""The C-model converter on tiny models written here (skipped without a C compiler)."""

import shutil

import pytest
import torch

from approx import MultiplierError, load_multiplier
from approx.convert import convert_directory, main

pytestmark = pytest.mark.skipif(
    not any(shutil.which(c) for c in ("cc", "gcc", "clang")), reason="no C compiler"
)

UNSIGNED_MODEL = """#include <stdint.h>
uint16_t mul8u_TINY(uint8_t A, uint8_t B) { return (uint16_t) ((A * B) & 0xFFF0); }
"""
SIGNED_MODEL = """#include <stdint.h>
int16_t mul8s_TINY(int8_t A, int8_t B) { return (int16_t) (A * B - (A < 0 ? 1 : 0)); }
"""


def test_converter_writes_tables_that_load(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    (src / "mul8u_TINY.c").write_text(UNSIGNED_MODEL)
    (src / "mul8s_TINY.c").write_text(SIGNED_MODEL)
    assert len(convert_directory(src, out)) == 2
    unsigned = load_multiplier("mul8u_TINY", lut_dir=out)
    codes = torch.arange(256)
    assert torch.equal(unsigned.lut, (torch.outer(codes, codes) & 0xFFF0).int())
    signed = load_multiplier("mul8s_TINY", lut_dir=out)
    values = torch.where(codes >= 128, codes - 256, codes)
    expected = torch.outer(values, values) - (values < 0).long().view(-1, 1)
    assert signed.signed and torch.equal(signed.lut, expected.int())
    assert signed.power_mw is None and "--multipliers" in signed.note
    assert "--power_mw" not in signed.note


def test_converter_errors_name_the_input(tmp_path, capsys):
    with pytest.raises(MultiplierError, match="holds no mul8u"):
        convert_directory(tmp_path, tmp_path / "out")
    (tmp_path / "mul8u_BROKEN.c").write_text("this is not C")
    with pytest.raises(MultiplierError, match="compiling .*mul8u_BROKEN.c failed"):
        convert_directory(tmp_path, tmp_path / "out")
    assert main([str(tmp_path / "missing"), str(tmp_path / "out")]) == 2  # bad input
    assert "error: SRC_DIR" in capsys.readouterr().err
