"""Truth-table .bin I/O in the TFApprox/EvoApproxLib layout (65,536 little-endian int16/uint16)."""

from pathlib import Path

import numpy as np
import torch

from approx.errors import MultiplierError

TABLE_ENTRIES = 256 * 256
TABLE_BYTES = 2 * TABLE_ENTRIES


def entry_dtype(signed: bool) -> np.dtype:
    """int16 entries for mul8s tables, uint16 for mul8u tables (both little-endian)."""
    return np.dtype("<i2") if signed else np.dtype("<u2")


def table_to_bytes(lut: torch.Tensor, signed: bool) -> bytes:
    """Serialise a 256x256 table (indexed [a, b] by bit pattern) as entry a*256+b."""
    return lut.cpu().numpy().astype(entry_dtype(signed)).tobytes()


def table_from_bytes(raw: bytes, signed: bool) -> torch.Tensor:
    """Parse 131,072 bytes into an int32 256x256 table."""
    values = np.frombuffer(raw, dtype=entry_dtype(signed)).astype(np.int32)
    return torch.from_numpy(values.reshape(256, 256).copy())


def read_table_bytes(path: Path) -> bytes:
    """Read a .bin file and check its size; every failure is one MultiplierError naming the file."""
    if not path.is_file():
        raise MultiplierError(
            f"truth-table file {path} does not exist; check the name or pass --lut_dir"
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise MultiplierError(f"truth-table file {path} is unreadable ({exc.strerror})") from exc
    if len(raw) != TABLE_BYTES:
        raise MultiplierError(
            f"truth-table file {path} has {len(raw)} bytes, expected {TABLE_BYTES} "
            "(65,536 little-endian 16-bit entries, index a*256+b); regenerate it with "
            "python -m approx.convert"
        )
    return raw


def write_table(path: Path, lut: torch.Tensor, signed: bool) -> None:
    """Write a table in the .bin layout."""
    path.write_bytes(table_to_bytes(lut, signed))
